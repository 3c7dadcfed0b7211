package store_test

import (
	"context"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/leadrouter/leadrouter/engine"
	"github.com/leadrouter/leadrouter/internal/redistest"
	"github.com/leadrouter/leadrouter/store"
)

// TestReplyCodesAgree: contract.lua's C table and the Go codes are the same
// list, name for name and value for value.
func TestReplyCodesAgree(t *testing.T) {
	src, err := os.ReadFile("lua/contract.lua")
	if err != nil {
		t.Fatal(err)
	}
	lua := map[string]int{}
	for _, m := range regexp.MustCompile(`(?m)^\s+([A-Z_]+) = (\d+),`).FindAllStringSubmatch(string(src), -1) {
		n, _ := strconv.Atoi(m[2])
		lua[m[1]] = n
	}
	goCodes := store.ReplyCodes()
	if len(lua) == 0 || len(lua) != len(goCodes) {
		t.Fatalf("contract.lua has %d codes, Go %d: %v vs %v", len(lua), len(goCodes), lua, goCodes)
	}
	for name, v := range lua {
		if goCodes[name] != v {
			t.Errorf("%s: Lua %d, Go %d", name, v, goCodes[name])
		}
	}
}

// TestScriptsCarryOnlyTheirModules: a script holds the library functions
// it uses and no others, and no script reads positional arguments beyond
// its request (and lead_decide's payload).
func TestScriptsCarryOnlyTheirModules(t *testing.T) {
	has := func(name, fn string) bool {
		return strings.Contains(store.ScriptSource(name), "local function "+fn+"(")
	}
	for _, c := range []struct {
		script  string
		with    []string
		without []string
	}{
		{"lead_decide", []string{"pick", "place", "index_leave", "ineligible", "emit"},
			[]string{"uncommit_rep", "place_stored", "claim_timer", "index_presence"}},
		{"lead_expire", []string{"claim_timer", "emit"}, []string{"pick", "ineligible", "index_leave", "place"}},
		{"offer_accept", []string{"emit", "add_history"}, []string{"pick", "place", "index_leave", "ineligible"}},
		{"rep_set_status", []string{"index_presence"}, []string{"pick", "place", "ineligible", "add_history"}},
		{"config_begin", nil, []string{"emit", "pick", "index_leave"}},
	} {
		for _, fn := range c.with {
			if !has(c.script, fn) {
				t.Errorf("%s lacks %s", c.script, fn)
			}
		}
		for _, fn := range c.without {
			if has(c.script, fn) {
				t.Errorf("%s carries %s, which it does not use", c.script, fn)
			}
		}
	}
	// Every library function a script carries is named somewhere else in
	// it.
	def := regexp.MustCompile(`(?m)^local function ([A-Za-z_][A-Za-z0-9_]*)\(`)
	for _, name := range store.ScriptNames() {
		var code strings.Builder
		for _, line := range strings.Split(store.ScriptSource(name), "\n") {
			c, _, _ := strings.Cut(line, "--")
			code.WriteString(c + "\n")
		}
		body := code.String()
		for _, m := range def.FindAllStringSubmatch(body, -1) {
			if n := len(regexp.MustCompile(`\b`+m[1]+`\b`).FindAllStringIndex(body, -1)); n < 2 {
				t.Errorf("%s carries %s, which nothing in it calls", name, m[1])
			}
		}
	}
	argv := regexp.MustCompile(`ARGV\[(\d+)\]`)
	for _, name := range store.ScriptNames() {
		for _, line := range strings.Split(store.ScriptSource(name), "\n") {
			if code, _, _ := strings.Cut(line, "--"); code != "" {
				for _, m := range argv.FindAllStringSubmatch(code, -1) {
					if m[1] != "1" && !(name == "lead_decide" && m[1] == "2") {
						t.Errorf("%s reads %s: arguments beyond the request", name, m[0])
					}
				}
			}
		}
	}
}

// where is "file:line" of the last line of a Lua file holding text.
func where(t *testing.T, file, text string) string {
	t.Helper()
	src, err := os.ReadFile("lua/" + file)
	if err != nil {
		t.Fatal(err)
	}
	line := 0
	for i, l := range strings.Split(string(src), "\n") {
		if strings.Contains(l, text) {
			line = i + 1
		}
	}
	if line == 0 {
		t.Fatalf("%s has no line with %q", file, text)
	}
	return file + ":" + strconv.Itoa(line)
}

// TestScriptErrorsNameTheirFile: an error raised inside a script names the
// file and line it comes from, not the line of the assembled body (which
// has the library in front of it), on both backends.
func TestScriptErrorsNameTheirFile(t *testing.T) {
	want := where(t, "rep_set_status.lua", "ipairs(A.pools")
	for _, b := range redistest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			st := b.Open(t)
			// pools must be a list: a number makes ipairs fail on that line.
			_, _, err := store.CallScript(context.Background(), st, redistest.Workspace(t), "rep_set_status", nil,
				`{"cfg":"x","now":1,"rep":"a","status":"AWAY","pools":5}`)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("error %v, want it to name %s", err, want)
			}
			if strings.Contains(err.Error(), "user_script") {
				t.Fatalf("error %v still names the assembled body", err)
			}
		})
	}
}

// TestModuleErrorsNameTheirFile: an error raised in a library function
// names the module's file and the line in it, though the script carries
// only some of the module's functions: lead_decide sent no local times
// fails in lib_eligibility.lua's local_time.
func TestModuleErrorsNameTheirFile(t *testing.T) {
	want := where(t, "lib_eligibility.lua", "error('no local time for zone")
	for _, b := range redistest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			st := b.Open(t)
			ctx := context.Background()
			ws := redistest.Workspace(t)
			cfg, _ := engine.ParseConfigYAML(strings.NewReader(`
reps: [{id: a}]
pools: [{id: p, members: [{rep_id: a}]}]
rules: [{id: all, targets: [{pool_id: p}]}]
`))
			if _, err := engine.New(st).ApplyConfig(ctx, ws, cfg, nil); err != nil {
				t.Fatal(err)
			}
			id, err := st.Client().HGet(ctx, st.Prefix()+":{"+ws+"}:config", "id").Result()
			if err != nil {
				t.Fatal(err)
			}
			req := `{"cfg":"` + id + `","now":1,"lead":"x","queued":"","unroutable":"","person":"","sticky":0,` +
				`"owner":"","domain":"","score":-1,"expire":0,"submitted":1,"targets":[{"pool":"p","skip":false,"wait":0,` +
				`"accept":0,"cooldown":0,"max_missed":0,"max_offers":0,"sla":0,"warn":0,"breach":""}]}`
			_, _, err = store.CallScript(ctx, st, ws, "lead_decide", store.DecideKeys(st, ws, "x", "p"), req)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("error %v, want it to name %s", err, want)
			}
		})
	}
}

// TestRecordFormat: a new record keeps what no script reads in one
// protobuf field (pb), not in fields of their own, and reads back whole.
func TestRecordFormat(t *testing.T) {
	for _, b := range redistest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			st := b.Open(t)
			ctx := context.Background()
			ws := redistest.Workspace(t)
			eng := engine.New(st)
			cfg, err := engine.ParseConfigYAML(strings.NewReader(`
reps: [{id: a}]
pools: [{id: p, members: [{rep_id: a}]}]
rules: [{id: web, match: {sources: [web]}, targets: [{pool_id: p}]}]
`))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := eng.ApplyConfig(ctx, ws, cfg, nil); err != nil {
				t.Fatal(err)
			}
			score := int32(70)
			lead := engine.Lead{ID: "l1", Email: "jane@acme.com", Source: "web", Country: "DE", Score: &score,
				Attributes: map[string]string{"utm": "x"}}
			made, _, err := eng.AssignLead(ctx, ws, lead)
			if err != nil {
				t.Fatal(err)
			}
			f, err := st.Client().HGetAll(ctx, st.Prefix()+":{"+ws+"}:lead:l1").Result()
			if err != nil {
				t.Fatal(err)
			}
			if f["pb"] == "" {
				t.Fatalf("record has no pb field: %v", f)
			}
			for _, old := range []string{"lead", "rules", "rule", "received_at", "cfgv"} {
				if _, ok := f[old]; ok {
					t.Errorf("record keeps %s in a field of its own", old)
				}
			}
			got, err := eng.GetAssignment(ctx, ws, "l1")
			if err != nil {
				t.Fatal(err)
			}
			if got.Lead.Email != lead.Email || got.Lead.Country != "DE" || *got.Lead.Score != 70 || got.Lead.Attributes["utm"] != "x" ||
				!got.Lead.SubmittedAt.Equal(made.Lead.SubmittedAt) {
				t.Errorf("lead read back as %+v, made %+v", got.Lead, made.Lead)
			}
			if got.RuleID != "web" || got.ConfigVersion != made.ConfigVersion || got.ConfigVersion == 0 ||
				!got.ReceivedAt.Equal(made.ReceivedAt) || len(got.Trace.Rules) != len(made.Trace.Rules) || !got.Trace.Rules[0].Matched {
				t.Errorf("read back %+v, made %+v", got, made)
			}
		})
	}
}

// TestScriptsEmitKnownKinds: every event kind a script writes is an
// engine.EventKind (and every fact kind one, or FactDequeued).
func TestScriptsEmitKnownKinds(t *testing.T) {
	known := map[string]bool{string(engine.FactDequeued): true, string(engine.FactRemoved): true}
	for _, k := range engine.EventKinds {
		known[string(k)] = true
	}
	kinds := regexp.MustCompile(`(?:emit|observe)\('([a-z_]+)'|'kind', '([a-z_]+)'`)
	seen := 0
	for _, name := range store.ScriptNames() {
		for _, m := range kinds.FindAllStringSubmatch(store.ScriptSource(name), -1) {
			k := m[1] + m[2]
			seen++
			if !known[k] {
				t.Errorf("%s writes event kind %q, which engine.EventKinds lacks", name, k)
			}
		}
	}
	if seen < 10 {
		t.Fatalf("found %d event kinds in the scripts: the pattern is stale", seen)
	}
}

// TestRepliesMatchTheirScripts: the codes each script can return (the
// replies it builds, "{ C.X") are the codes its Go reply declares, and
// its header's "Returns:" block documents each of them.
func TestRepliesMatchTheirScripts(t *testing.T) {
	returns := regexp.MustCompile(`(?:return|=) \{ C\.([A-Z_]+)`)
	for name, declared := range store.ScriptReplyCodes() {
		src, err := os.ReadFile("lua/" + name + ".lua")
		if err != nil {
			t.Fatal(err)
		}
		found := map[string]bool{}
		for _, m := range returns.FindAllStringSubmatch(string(src), -1) {
			found[m[1]] = true
		}
		want := map[string]bool{}
		for _, c := range declared {
			want[c] = true
		}
		for c := range found {
			if !want[c] {
				t.Errorf("%s returns %s, which its Go reply does not declare", name, c)
			}
		}
		_, doc, _ := strings.Cut(string(src), "-- Returns:")
		doc, _, _ = strings.Cut(doc, "\n\n")
		for c := range want {
			if !found[c] {
				t.Errorf("%s: Go declares %s, which the script never returns", name, c)
			}
			if doc != "" && !strings.Contains(doc, "{"+c) {
				t.Errorf("%s: %s is not in its Returns: block", name, c)
			}
		}
	}
}
