package engine

import (
	"bytes"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
)

// validConfig returns a small config that passes Validate:
//
//	rules[0] us         countries US              -> na
//	rules[1] healthcare industries healthcare     -> na, emea
//	rules[2] dach       countries de, at          -> emea
//	rules[3] default    (matches every lead)      -> emea
func validConfig() *Config {
	return &Config{
		Reps: []Rep{
			{ID: "ava", Email: "ava@example.com", Timezone: "America/New_York"},
			{ID: "ben"},
			{ID: "chloe", InitialStatus: StatusAway},
		},
		Pools: []Pool{
			{ID: "na", Members: []Member{{RepID: "ava"}, {RepID: "ben"}}},
			{ID: "emea", Strategy: StrategyRoundRobin, Members: []Member{{RepID: "chloe"}}},
		},
		Rules: []Rule{
			{ID: "us", Match: Match{Countries: []string{"US"}}, Targets: []Target{{PoolID: "na"}}},
			{ID: "healthcare", Match: Match{Industries: []string{"healthcare"}}, Targets: []Target{{PoolID: "na"}, {PoolID: "emea"}}},
			{ID: "dach", Match: Match{Countries: []string{"de", "at"}}, Targets: []Target{{PoolID: "emea"}}},
			{ID: "default", Targets: []Target{{PoolID: "emea"}}},
		},
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(c *Config)
		// want is the exact multiset of violation paths; nil means valid.
		want []string
		// wantDesc maps a path to a substring its description must hold.
		wantDesc map[string]string
		check    func(t *testing.T, c *Config)
	}{
		{
			name:   "valid config gets defaults",
			mutate: func(c *Config) {},
			check: func(t *testing.T, c *Config) {
				for _, p := range c.Pools {
					if p.Strategy != StrategyRoundRobin {
						t.Errorf("pool %s strategy = %q, want ROUND_ROBIN", p.ID, p.Strategy)
					}
				}
				if c.Reps[0].Timezone != "America/New_York" {
					t.Errorf("reps[0].timezone = %q, want it kept", c.Reps[0].Timezone)
				}
				for _, i := range []int{1, 2} {
					if c.Reps[i].Timezone != "UTC" {
						t.Errorf("reps[%d].timezone = %q, want UTC", i, c.Reps[i].Timezone)
					}
				}
				if c.Reps[0].InitialStatus != StatusAvailable || c.Reps[1].InitialStatus != StatusAvailable {
					t.Errorf("initial statuses = %q, %q, want AVAILABLE", c.Reps[0].InitialStatus, c.Reps[1].InitialStatus)
				}
				if c.Reps[2].InitialStatus != StatusAway {
					t.Errorf("reps[2].initial_status = %q, want it kept (AWAY)", c.Reps[2].InitialStatus)
				}
				if got := c.Rules[2].Match.Countries; !slices.Equal(got, []string{"DE", "AT"}) {
					t.Errorf("rules[2].match.countries = %q, want upper-cased [DE AT]", got)
				}
			},
		},
		{
			name:   "empty config is valid",
			mutate: func(c *Config) { *c = Config{} },
		},
		{
			name:     "duplicate rep id",
			mutate:   func(c *Config) { c.Reps = append(c.Reps, Rep{ID: "ava"}) },
			want:     []string{"reps[3].id"},
			wantDesc: map[string]string{"reps[3].id": `duplicate rep id "ava"`},
		},
		{
			name:   "missing rep id",
			mutate: func(c *Config) { c.Reps = append(c.Reps, Rep{Name: "nobody"}) },
			want:   []string{"reps[3].id"},
		},
		{
			name:   "rep id with a space",
			mutate: func(c *Config) { c.Reps = append(c.Reps, Rep{ID: "dan smith"}) },
			want:   []string{"reps[3].id"},
		},
		{
			name:   "rep id too long",
			mutate: func(c *Config) { c.Reps = append(c.Reps, Rep{ID: strings.Repeat("r", MaxIDBytes+1)}) },
			want:   []string{"reps[3].id"},
		},
		{
			name:     "unknown time zone",
			mutate:   func(c *Config) { c.Reps[1].Timezone = "Mars/Olympus" },
			want:     []string{"reps[1].timezone"},
			wantDesc: map[string]string{"reps[1].timezone": "Mars/Olympus"},
		},
		{
			name:     "server-local time zone",
			mutate:   func(c *Config) { c.Reps[1].Timezone = "Local" },
			want:     []string{"reps[1].timezone"},
			wantDesc: map[string]string{"reps[1].timezone": "Local"},
		},
		{
			name:   "bad initial_status",
			mutate: func(c *Config) { c.Reps[0].InitialStatus = "BUSY" },
			want:   []string{"reps[0].initial_status"},
		},
		{
			name:   "bad rep email",
			mutate: func(c *Config) { c.Reps[0].Email = "ava" },
			want:   []string{"reps[0].email"},
		},
		{
			name: "rep attribute value too long",
			mutate: func(c *Config) {
				c.Reps[0].Attributes = map[string]string{"k": strings.Repeat("v", MaxAttrValueBytes+1)}
			},
			want: []string{`reps[0].attributes["k"]`},
		},
		{
			name:   "pool with no members",
			mutate: func(c *Config) { c.Pools[1].Members = nil },
			want:   []string{"pools[1].members"},
		},
		{
			name:     "member names an unknown rep",
			mutate:   func(c *Config) { c.Pools[0].Members[1].RepID = "zoe" },
			want:     []string{"pools[0].members[1].rep_id"},
			wantDesc: map[string]string{"pools[0].members[1].rep_id": `unknown rep "zoe"`},
		},
		{
			name:   "member without rep id",
			mutate: func(c *Config) { c.Pools[0].Members[1].RepID = "" },
			want:   []string{"pools[0].members[1].rep_id"},
		},
		{
			name:     "duplicate member",
			mutate:   func(c *Config) { c.Pools[0].Members = append(c.Pools[0].Members, Member{RepID: "ava"}) },
			want:     []string{"pools[0].members[2].rep_id"},
			wantDesc: map[string]string{"pools[0].members[2].rep_id": `"ava"`},
		},
		{
			name:   "duplicate pool id",
			mutate: func(c *Config) { c.Pools = append(c.Pools, Pool{ID: "na", Members: []Member{{RepID: "ben"}}}) },
			want:   []string{"pools[2].id"},
		},
		{
			name:   "unsupported strategy",
			mutate: func(c *Config) { c.Pools[0].Strategy = "RANDOM" },
			want:   []string{"pools[0].strategy"},
		},
		{
			name:     "rule target names an unknown pool",
			mutate:   func(c *Config) { c.Rules[3].Targets[0].PoolID = "emea-smb" },
			want:     []string{"rules[3].targets[0].pool_id"},
			wantDesc: map[string]string{"rules[3].targets[0].pool_id": `unknown pool "emea-smb"`},
		},
		{
			name:   "rule target without pool id",
			mutate: func(c *Config) { c.Rules[0].Targets[0].PoolID = "" },
			want:   []string{"rules[0].targets[0].pool_id"},
		},
		{
			name:   "duplicate rule target",
			mutate: func(c *Config) { c.Rules[1].Targets = append(c.Rules[1].Targets, Target{PoolID: "na"}) },
			want:   []string{"rules[1].targets[2].pool_id"},
		},
		{
			name:   "rule with no targets",
			mutate: func(c *Config) { c.Rules[1].Targets = nil },
			want:   []string{"rules[1].targets"},
		},
		{
			name:   "duplicate rule id",
			mutate: func(c *Config) { c.Rules[1].ID = "us" },
			want:   []string{"rules[1].id"},
		},
		{
			name:   "missing rule id",
			mutate: func(c *Config) { c.Rules[1].ID = "" },
			want:   []string{"rules[1].id"},
		},
		{
			name:     "unknown country in match",
			mutate:   func(c *Config) { c.Rules[0].Match.Countries = []string{"US", "UK"} },
			want:     []string{"rules[0].match.countries[1]"},
			wantDesc: map[string]string{"rules[0].match.countries[1]": `"UK"`},
		},
		{
			name:   "bad language in match",
			mutate: func(c *Config) { c.Rules[2].Match.Languages = []string{"de", "not a tag"} },
			want:   []string{"rules[2].match.languages[1]"},
		},
		{
			name:   "empty region in match",
			mutate: func(c *Config) { c.Rules[0].Match.Regions = []string{"CA", "  "} },
			want:   []string{"rules[0].match.regions[1]"},
		},
		{
			name:   "empty postal prefix in match",
			mutate: func(c *Config) { c.Rules[0].Match.PostalPrefixes = []string{""} },
			want:   []string{"rules[0].match.postal_prefixes[0]"},
		},
		{
			name:     "score range min greater than max",
			mutate:   func(c *Config) { c.Rules[1].Match.Score = &IntRange{Min: int32p(80), Max: int32p(20)} },
			want:     []string{"rules[1].match.score"},
			wantDesc: map[string]string{"rules[1].match.score": "min 80 is greater than max 20"},
		},
		{
			name:   "score max 101",
			mutate: func(c *Config) { c.Rules[1].Match.Score = &IntRange{Max: int32p(101)} },
			want:   []string{"rules[1].match.score.max"},
		},
		{
			name:   "score min -1",
			mutate: func(c *Config) { c.Rules[1].Match.Score = &IntRange{Min: int32p(-1), Max: int32p(50)} },
			want:   []string{"rules[1].match.score.min"},
		},
		{
			name:   "score range with no bound",
			mutate: func(c *Config) { c.Rules[1].Match.Score = &IntRange{} },
			want:   []string{"rules[1].match.score"},
		},
		{
			name:   "score range 0-100 is valid",
			mutate: func(c *Config) { c.Rules[1].Match.Score = &IntRange{Min: int32p(0), Max: int32p(100)} },
		},
		{
			name:   "employee_count range min greater than max",
			mutate: func(c *Config) { c.Rules[1].Match.EmployeeCount = &IntRange{Min: int32p(500), Max: int32p(10)} },
			want:   []string{"rules[1].match.employee_count"},
		},
		{
			name:   "employee_count min negative",
			mutate: func(c *Config) { c.Rules[1].Match.EmployeeCount = &IntRange{Min: int32p(-1)} },
			want:   []string{"rules[1].match.employee_count.min"},
		},
		{
			name:   "match attribute with empty key",
			mutate: func(c *Config) { c.Rules[1].Match.Attributes = map[string]string{"": "x"} },
			want:   []string{"rules[1].match.attributes"},
		},
		{
			name:     "rules after a match-everything rule are unreachable",
			mutate:   func(c *Config) { c.Rules[1].Match = Match{} },
			want:     []string{"rules[2]", "rules[3]"},
			wantDesc: map[string]string{"rules[2]": `rules[1] ("healthcare")`, "rules[3]": "unreachable"},
		},
		{
			name: "match with empty lists matches everything",
			mutate: func(c *Config) {
				c.Rules[0].Match = Match{Countries: []string{}, Attributes: map[string]string{}}
			},
			want: []string{"rules[1]", "rules[2]", "rules[3]"},
		},
		{
			name: "every problem is listed",
			mutate: func(c *Config) {
				c.Reps = append(c.Reps, Rep{ID: "ava", Timezone: "Mars/Olympus", InitialStatus: "busy"})
				c.Pools[0].Members[1].RepID = "zoe"
				c.Pools[1].Members = nil
				c.Rules[0].Match.Countries = []string{"EU"}
				c.Rules[1].Match.Score = &IntRange{Min: int32p(90), Max: int32p(101)}
				c.Rules[2].Targets = nil
				c.Rules[3].Targets[0].PoolID = "emea-smb"
				c.Rules = append(c.Rules, Rule{ID: "late", Match: Match{Sources: []string{"web"}}, Targets: []Target{{PoolID: "na"}}})
			},
			want: []string{
				"reps[3].id",
				"reps[3].timezone",
				"reps[3].initial_status",
				"pools[0].members[1].rep_id",
				"pools[1].members",
				"rules[0].match.countries[0]",
				"rules[1].match.score.max",
				"rules[2].targets",
				"rules[3].targets[0].pool_id",
				"rules[4]",
			},
			wantDesc: map[string]string{
				"rules[3].targets[0].pool_id": `unknown pool "emea-smb"`,
				"rules[4]":                    "unreachable",
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := validConfig()
			tc.mutate(c)
			err := c.Validate()
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				if tc.check != nil {
					tc.check(t, c)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want violations at %q", tc.want)
			}
			fields := violationFields(t, err)
			got := slices.Sorted(slices.Values(fields))
			want := slices.Sorted(slices.Values(tc.want))
			if !slices.Equal(got, want) {
				t.Errorf("violation paths = %q, want %q\nerror: %v", got, want, err)
			}
			var ve *ValidationError
			errors.As(err, &ve)
			for path, sub := range tc.wantDesc {
				found := false
				for _, v := range ve.Violations {
					if v.Field == path && strings.Contains(v.Description, sub) {
						found = true
					}
				}
				if !found {
					t.Errorf("no violation at %s containing %q\nerror: %v", path, sub, err)
				}
			}
			if tc.name == "rule target names an unknown pool" &&
				!strings.Contains(err.Error(), `rules[3].targets[0].pool_id: unknown pool "emea-smb"`) {
				t.Errorf("Error() = %q, want it to hold the path and description", err.Error())
			}
		})
	}
}

func TestParseConfigYAML(t *testing.T) {
	t.Run("example config", func(t *testing.T) {
		f, err := os.Open("../examples/routing.yaml")
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		cfg, err := ParseConfigYAML(f)
		if err != nil {
			t.Fatalf("ParseConfigYAML: %v", err)
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("Validate: %v", err)
		}
		if len(cfg.Pools) < 3 {
			t.Errorf("%d pools, want at least 3", len(cfg.Pools))
		}
		if len(cfg.Rules) < 6 {
			t.Fatalf("%d rules, want at least 6", len(cfg.Rules))
		}
		if last := cfg.Rules[len(cfg.Rules)-1]; !last.Match.IsZero() {
			t.Errorf("last rule %q has match %+v, want an empty match", last.ID, last.Match)
		}
	})

	tests := []struct {
		name    string
		yaml    string
		wantErr string // substring of the parse error; "" means no error
		check   func(t *testing.T, c *Config)
	}{
		{name: "unknown field in rule", yaml: "rules: [{id: x, mach: {}}]", wantErr: "mach"},
		{name: "unknown top-level field", yaml: "rep: []", wantErr: "rep"},
		{name: "unknown match criterion", yaml: "rules: [{id: x, match: {country: [US]}, targets: [{pool_id: p}]}]", wantErr: "country"},
		{name: "wrong type", yaml: "reps: {id: ava}", wantErr: "routing config"},
		{name: "syntax error", yaml: "reps: [", wantErr: "routing config"},
		{
			name: "empty document",
			yaml: "",
			check: func(t *testing.T, c *Config) {
				if len(c.Reps)+len(c.Pools)+len(c.Rules) != 0 {
					t.Errorf("config = %+v, want empty", c)
				}
			},
		},
		{
			name: "strategy and initial_status are case-insensitive",
			yaml: `
reps: [{id: a, initial_status: away}, {id: b, initial_status: Offline}]
pools: [{id: p, strategy: round_robin, members: [{rep_id: a}, {rep_id: b}]}]
rules: [{id: r, targets: [{pool_id: p}]}]
`,
			check: func(t *testing.T, c *Config) {
				if c.Pools[0].Strategy != StrategyRoundRobin {
					t.Errorf("strategy = %q, want ROUND_ROBIN", c.Pools[0].Strategy)
				}
				if c.Reps[0].InitialStatus != StatusAway || c.Reps[1].InitialStatus != StatusOffline {
					t.Errorf("initial statuses = %q, %q, want AWAY, OFFLINE", c.Reps[0].InitialStatus, c.Reps[1].InitialStatus)
				}
				if err := c.Validate(); err != nil {
					t.Errorf("Validate: %v", err)
				}
			},
		},
		{
			name: "ranges and attributes",
			yaml: `
rules:
  - id: r
    match: {employee_count: {min: 10, max: 99}, score: {min: 70}, attributes: {tier: gold}}
    targets: [{pool_id: p}]
`,
			check: func(t *testing.T, c *Config) {
				m := c.Rules[0].Match
				if m.EmployeeCount == nil || m.EmployeeCount.String() != "[10..99]" {
					t.Errorf("employee_count = %v, want [10..99]", m.EmployeeCount)
				}
				if m.Score == nil || m.Score.String() != "[70..]" {
					t.Errorf("score = %v, want [70..]", m.Score)
				}
				if m.Attributes["tier"] != "gold" {
					t.Errorf("attributes = %v", m.Attributes)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseConfigYAML(strings.NewReader(tc.yaml))
			if tc.wantErr != "" {
				if err == nil {
					t.Fatalf("ParseConfigYAML() = %+v, nil; want an error containing %q", c, tc.wantErr)
				}
				if !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("error = %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseConfigYAML: %v", err)
			}
			if tc.check != nil {
				tc.check(t, c)
			}
		})
	}
}

func FuzzParseConfigYAML(f *testing.F) {
	if b, err := os.ReadFile("../examples/routing.yaml"); err == nil {
		f.Add(b)
	}
	f.Add([]byte("rules: [{id: x, mach: {}}]"))
	f.Add([]byte("reps: [{id: a, initial_status: away, timezone: Mars/Olympus}]\npools: [{id: p, strategy: round_robin, members: [{rep_id: a}, {rep_id: a}]}]\nrules: [{id: r, match: {score: {min: 90, max: 10}}, targets: [{pool_id: q}]}, {id: d, targets: [{pool_id: p}]}]"))
	f.Add([]byte("a: &a [*a, *a]"))
	f.Add([]byte("rules:\n  - id: r\n    match: {countries: [de], languages: [de-at], postal_prefixes: [' 80 ']}\n    targets: [{pool_id: p}]"))
	f.Add([]byte{})
	score := int32(75)
	lead := Lead{ID: "l", Country: "DE", Region: "BY", PostalCode: "80331", Industry: "software",
		EmployeeCount: 120, Source: "web", Product: "crm", Language: "de-AT", Score: &score,
		Attributes: map[string]string{"tier": "gold"}}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfigYAML(bytes.NewReader(data))
		if err != nil {
			if c != nil {
				t.Errorf("ParseConfigYAML returned a config with error %v", err)
			}
			return
		}
		if c == nil {
			t.Fatal("ParseConfigYAML returned nil, nil")
		}
		if err := c.Validate(); err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("Validate error %v does not match ErrInvalid", err)
			}
			return
		}
		// A valid config must compile and match without panicking.
		cc := compile(c, nil)
		l := lead
		if r, evals := cc.match(&l); r != nil && (len(evals) == 0 || !evals[len(evals)-1].Matched) {
			t.Errorf("matched rule %q but the last evaluation is %+v", r.id, evals)
		}
	})
}
