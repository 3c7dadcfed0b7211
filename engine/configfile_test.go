package engine_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/leadrouter/leadrouter/engine"
)

// TestConfigFileNeverRevertsSilently walks the three cases of a --config
// file at start: no config yet (applied), a changed file with no API apply
// since (applied), and a changed file after an API apply (refused unless
// overwrite); an unchanged file keeps what the API applied.
func TestConfigFileNeverRevertsSilently(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		parse := func(yaml string) *engine.Config {
			cfg, err := engine.ParseConfigYAML(strings.NewReader(yaml))
			if err != nil {
				t.Fatal(err)
			}
			return cfg
		}
		fileV1, fileV2 := parse(onePool("a")), parse(onePool("a", "b"))
		apply := func(cfg *engine.Config, hash string, overwrite bool) (engine.FileApply, int64, error) {
			return f.eng.ApplyConfigFile(f.ctx, f.ws, cfg, hash, overwrite)
		}
		// 1. No config: applied.
		if did, v, err := apply(fileV1, "h1", false); err != nil || did != engine.FileApplied || v != 1 {
			t.Fatalf("first start: %s v%d %v", did, v, err)
		}
		// Every other replica, and a restart: nothing to do.
		if did, v, err := apply(fileV1, "h1", false); err != nil || did != engine.FileCurrent || v != 1 {
			t.Fatalf("restart: %s v%d %v", did, v, err)
		}
		// 2. The file changed, nobody applied through the API: applied.
		if did, v, err := apply(fileV2, "h2", false); err != nil || did != engine.FileApplied || v != 2 {
			t.Fatalf("changed file: %s v%d %v", did, v, err)
		}
		// An operator applies through the API.
		api := parse(onePool("a", "b", "c"))
		if _, err := f.eng.ApplyConfig(f.ctx, f.ws, api, nil); err != nil {
			t.Fatal(err)
		}
		// The same file again: the API's config stays.
		if did, v, err := apply(fileV2, "h2", false); err != nil || did != engine.FileUnchanged || v != 3 {
			t.Fatalf("unchanged file after an API apply: %s v%d %v", did, v, err)
		}
		// 3. A changed file after the API apply: refused, nothing written...
		_, v, err := apply(fileV1, "h3", false)
		if !errors.Is(err, engine.ErrConfigDiverged) || v != 3 || !strings.Contains(err.Error(), "--config-overwrite") {
			t.Fatalf("changed file after an API apply: v%d %v", v, err)
		}
		if cur, _ := f.eng.Config(f.ctx, f.ws); cur.Version != 3 || len(cur.Config.Reps) != 3 {
			t.Fatalf("refused, yet the config is v%d with %d reps", cur.Version, len(cur.Config.Reps))
		}
		// ...unless overwrite.
		if did, v, err := apply(fileV1, "h3", true); err != nil || did != engine.FileApplied || v != 4 {
			t.Fatalf("overwrite: %s v%d %v", did, v, err)
		}
		if did, _, err := apply(fileV1, "h3", false); err != nil || did != engine.FileCurrent {
			t.Fatalf("after the overwrite: %s %v", did, err)
		}
	})
}
