package engine

import (
	"context"
	"errors"
	"fmt"
	"reflect"
)

// A config file (leadrouterd --config) is applied at start by every
// replica that is given it, so it must never silently replace a config an
// operator applied through the API since. The workspace remembers the hash
// of the file body last applied from a file and the version that apply
// made.

// ErrConfigDiverged: the config file changed since it was last applied,
// and a config was applied through the API after that apply: applying the
// file would revert that change.
var ErrConfigDiverged = errors.New("the workspace's routing config was applied through the API since the config file was last applied")

// FileApply is what ApplyConfigFile did.
type FileApply string

// ApplyConfigFile outcomes.
const (
	FileApplied   FileApply = "applied"   // the file is the config now, as a new version
	FileCurrent   FileApply = "current"   // the config is the file's already
	FileUnchanged FileApply = "unchanged" // the file is as last applied; a config applied through the API since stays
)

// ApplyConfigFile applies cfg, a config file's content whose body hashes
// to hash, to ws at start: when ws has no config, or when the file's body
// differs from the one last applied from a file. When the file changed but
// a config was applied through the API since, it fails with
// ErrConfigDiverged unless overwrite. An unchanged file never replaces a
// config applied through the API. It returns what it did and the version
// current after.
func (e *Engine) ApplyConfigFile(ctx context.Context, ws string, cfg *Config, hash string, overwrite bool) (FileApply, int64, error) {
	ws, err := NormalizeWorkspace(ws)
	if err != nil {
		return "", 0, err
	}
	cur, err := e.store.LoadConfig(ctx, ws)
	if err != nil && !errors.Is(err, ErrNoConfig) {
		return "", 0, err
	}
	if cur != nil {
		if reflect.DeepEqual(cur.Config, cfg) {
			// Another replica applied it, or it was applied by hand.
			return FileCurrent, cur.Version, e.store.SetConfigSource(ctx, ws, hash, cur.Version)
		}
		lastHash, lastVersion, err := e.store.ConfigSource(ctx, ws)
		if err != nil {
			return "", 0, err
		}
		apiSince := cur.Version != lastVersion
		switch {
		case lastHash == hash && !apiSince:
			return FileCurrent, cur.Version, nil
		case lastHash == hash:
			return FileUnchanged, cur.Version, nil
		case apiSince && !overwrite:
			from := "no file"
			if lastVersion > 0 {
				from = fmt.Sprintf("version %d", lastVersion)
			}
			return "", cur.Version, fmt.Errorf("%w (the file made %s; the workspace is at version %d, applied %s): applying the changed file would revert that; apply it with leadctl, or start with --config-overwrite",
				ErrConfigDiverged, from, cur.Version, cur.AppliedAt.Format("2006-01-02T15:04:05Z07:00"))
		}
	}
	v, err := e.ApplyConfig(ctx, ws, cfg, nil)
	if err != nil {
		return "", 0, err
	}
	return FileApplied, v, e.store.SetConfigSource(ctx, ws, hash, v)
}
