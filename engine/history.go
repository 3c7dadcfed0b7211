package engine

import (
	"context"
	"errors"
	"fmt"
)

// ConfigHistoryKept is how many applied configs a workspace keeps (their
// bodies and who applied them): the bound of its config history.
const ConfigHistoryKept = 50

// ConfigVersions lists the workspace's kept config versions, newest first.
func (e *Engine) ConfigVersions(ctx context.Context, ws string) ([]ConfigVersion, error) {
	ws, err := NormalizeWorkspace(ws)
	if err != nil {
		return nil, err
	}
	return e.store.ConfigVersions(ctx, ws)
}

// ConfigAt returns the config applied as version (0: the current one).
// A version no longer kept is ErrNotFound, saying which are.
func (e *Engine) ConfigAt(ctx context.Context, ws string, version int64) (*StoredConfig, error) {
	ws, err := NormalizeWorkspace(ws)
	if err != nil {
		return nil, err
	}
	if version < 0 {
		return nil, &ValidationError{Violations: []FieldViolation{{"version", fmt.Sprintf("%d is negative", version)}}}
	}
	cur, err := e.store.LoadConfig(ctx, ws)
	if err != nil || version == 0 || version == cur.Version {
		return cur, err
	}
	cfg, err := e.store.ConfigAt(ctx, ws, version)
	if errors.Is(err, ErrNotFound) {
		return nil, e.notKept(ctx, ws, version)
	}
	if err != nil {
		return nil, err
	}
	out := &StoredConfig{Config: cfg, Version: version}
	if vs, err := e.store.ConfigVersions(ctx, ws); err == nil {
		for _, v := range vs {
			if v.Version == version {
				out.AppliedAt = v.AppliedAt
			}
		}
	}
	return out, nil
}

// notKept is the error of a version the history no longer holds.
func (e *Engine) notKept(ctx context.Context, ws string, version int64) error {
	vs, err := e.store.ConfigVersions(ctx, ws)
	if err != nil || len(vs) == 0 {
		return fmt.Errorf("config version %d is not kept: %w", version, ErrNotFound)
	}
	return fmt.Errorf("config version %d is not kept (versions %d to %d are): %w",
		version, vs[len(vs)-1].Version, vs[0].Version, ErrNotFound)
}

// RollbackConfig applies the body of a kept version as a new version,
// under the same rules and options as any apply (o.DryRun shows its diff
// and impact first).
func (e *Engine) RollbackConfig(ctx context.Context, ws string, version int64, o ApplyOptions) (*ApplyResult, error) {
	if version <= 0 {
		return nil, &ValidationError{Violations: []FieldViolation{{"version", "required: a kept version (ListConfigVersions)"}}}
	}
	sc, err := e.ConfigAt(ctx, ws, version)
	if err != nil {
		return nil, err
	}
	return e.ApplyConfigWith(ctx, ws, sc.Config, o)
}
