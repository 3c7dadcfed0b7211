package engine

import (
	"fmt"
	"strings"
	"testing"
)

// compileRules validates and compiles a config holding the given rules, all
// targeting one pool.
func compileRules(t *testing.T, rules ...Rule) *compiledConfig {
	t.Helper()
	cfg := &Config{
		Reps:  []Rep{{ID: "ava"}},
		Pools: []Pool{{ID: "p", Members: []Member{{RepID: "ava"}}}},
	}
	for _, r := range rules {
		if len(r.Targets) == 0 {
			r.Targets = []Target{{PoolID: "p"}}
		}
		cfg.Rules = append(cfg.Rules, r)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	return compile(cfg, nil)
}

func TestMatch(t *testing.T) {
	score := func(v int32) *int32 { return &v }
	rng := func(lo, hi *int32) *IntRange { return &IntRange{Min: lo, Max: hi} }
	tests := []struct {
		name  string
		match Match
		lead  Lead
		want  bool
		// detail, for a miss, is a substring of the evaluation's Detail.
		detail string
	}{
		{name: "empty match accepts everything", match: Match{}, lead: Lead{}, want: true},

		{name: "country in list", match: Match{Countries: []string{"DE", "AT"}}, lead: Lead{Country: "AT"}, want: true},
		{name: "country lower-case lead", match: Match{Countries: []string{"DE", "AT"}}, lead: Lead{Country: "de"}, want: true},
		{name: "country lower-case rule", match: Match{Countries: []string{"de"}}, lead: Lead{Country: "De"}, want: true},
		{name: "country not in list", match: Match{Countries: []string{"DE", "AT"}}, lead: Lead{Country: "FR"}, detail: "country FR not in"},
		{name: "country missing", match: Match{Countries: []string{"DE"}}, lead: Lead{}, detail: "country (none)"},

		{name: "region in list", match: Match{Regions: []string{"CA", "OR"}}, lead: Lead{Region: "OR"}, want: true},
		{name: "region case-insensitive", match: Match{Regions: []string{"Bavaria"}}, lead: Lead{Region: "BAVARIA"}, want: true},
		{name: "region spaces in rule ignored", match: Match{Regions: []string{" WA "}}, lead: Lead{Region: "wa"}, want: true},
		{name: "region not in list", match: Match{Regions: []string{"CA", "OR"}}, lead: Lead{Region: "NY"}, detail: "region NY"},
		{name: "region missing", match: Match{Regions: []string{"CA"}}, lead: Lead{}, detail: "region (none)"},

		{name: "postal prefix", match: Match{PostalPrefixes: []string{"80"}}, lead: Lead{PostalCode: "80331"}, want: true},
		{name: "postal equal to prefix", match: Match{PostalPrefixes: []string{"80331"}}, lead: Lead{PostalCode: "80331"}, want: true},
		{name: "postal second prefix", match: Match{PostalPrefixes: []string{"100", "80"}}, lead: Lead{PostalCode: "80331"}, want: true},
		{name: "postal spaces ignored in lead", match: Match{PostalPrefixes: []string{"SW1A1"}}, lead: Lead{PostalCode: "SW1A 1AA"}, want: true},
		{name: "postal spaces ignored in rule", match: Match{PostalPrefixes: []string{"8 0"}}, lead: Lead{PostalCode: "80 331"}, want: true},
		{name: "postal case-insensitive", match: Match{PostalPrefixes: []string{"sw1a"}}, lead: Lead{PostalCode: "Sw1a 1aa"}, want: true},
		{name: "postal other prefix", match: Match{PostalPrefixes: []string{"80"}}, lead: Lead{PostalCode: "81000"}, detail: "postal code 81000"},
		{name: "postal prefix longer than code", match: Match{PostalPrefixes: []string{"803310"}}, lead: Lead{PostalCode: "80331"}},
		{name: "postal empty never matches", match: Match{PostalPrefixes: []string{"8"}}, lead: Lead{PostalCode: ""}, detail: "postal code (none)"},
		{name: "postal blank never matches", match: Match{PostalPrefixes: []string{"8"}}, lead: Lead{PostalCode: "  "}},

		{name: "industry in list", match: Match{Industries: []string{"healthcare", "Biotechnology"}}, lead: Lead{Industry: "biotechnology"}, want: true},
		{name: "industry case-insensitive", match: Match{Industries: []string{"healthcare"}}, lead: Lead{Industry: "HealthCare"}, want: true},
		{name: "industry with spaces", match: Match{Industries: []string{"hospital & health care"}}, lead: Lead{Industry: "Hospital & Health Care"}, want: true},
		{name: "industry not in list", match: Match{Industries: []string{"healthcare"}}, lead: Lead{Industry: "software"}, detail: "industry software"},
		{name: "industry missing", match: Match{Industries: []string{"healthcare"}}, lead: Lead{}},

		{name: "employees at min", match: Match{EmployeeCount: rng(score(100), score(999))}, lead: Lead{EmployeeCount: 100}, want: true},
		{name: "employees at max", match: Match{EmployeeCount: rng(score(100), score(999))}, lead: Lead{EmployeeCount: 999}, want: true},
		{name: "employees above max", match: Match{EmployeeCount: rng(score(100), score(999))}, lead: Lead{EmployeeCount: 1000}, detail: "employee count 1000 not in [100..999]"},
		{name: "employees below min", match: Match{EmployeeCount: rng(score(100), score(999))}, lead: Lead{EmployeeCount: 99}},
		{name: "employees open max", match: Match{EmployeeCount: rng(score(1000), nil)}, lead: Lead{EmployeeCount: 50000}, want: true},
		{name: "employees open min", match: Match{EmployeeCount: rng(nil, score(50))}, lead: Lead{EmployeeCount: 1}, want: true},
		{name: "employees unknown with open min", match: Match{EmployeeCount: rng(nil, score(50))}, lead: Lead{EmployeeCount: 0}, detail: "employee count unknown"},
		{name: "employees unknown with min 0", match: Match{EmployeeCount: rng(score(0), score(10))}, lead: Lead{}, detail: "employee count unknown"},

		{name: "source in list", match: Match{Sources: []string{"web", "demo_request"}}, lead: Lead{Source: "Demo_Request"}, want: true},
		{name: "source not in list", match: Match{Sources: []string{"web"}}, lead: Lead{Source: "event"}, detail: "source event"},
		{name: "source missing", match: Match{Sources: []string{"web"}}, lead: Lead{}},

		{name: "product in list", match: Match{Products: []string{"crm", "erp"}}, lead: Lead{Product: "CRM"}, want: true},
		{name: "product not in list", match: Match{Products: []string{"crm"}}, lead: Lead{Product: "hr"}, detail: "product hr"},
		{name: "product missing", match: Match{Products: []string{"crm"}}, lead: Lead{}},

		{name: "language equal", match: Match{Languages: []string{"de"}}, lead: Lead{Language: "de"}, want: true},
		{name: "language more specific lead", match: Match{Languages: []string{"de"}}, lead: Lead{Language: "de-AT"}, want: true},
		{name: "language case-insensitive", match: Match{Languages: []string{"DE"}}, lead: Lead{Language: "de-at"}, want: true},
		{name: "language script subtag", match: Match{Languages: []string{"zh"}}, lead: Lead{Language: "zh-Hant-TW"}, want: true},
		{name: "language less specific lead", match: Match{Languages: []string{"de-AT"}}, lead: Lead{Language: "de"}, detail: "language de not in"},
		{name: "language same region", match: Match{Languages: []string{"de-AT"}}, lead: Lead{Language: "de-AT"}, want: true},
		{name: "language other region", match: Match{Languages: []string{"de-AT"}}, lead: Lead{Language: "de-CH"}},
		{name: "language with a longer primary subtag", match: Match{Languages: []string{"de"}}, lead: Lead{Language: "del"}, detail: "language del not in [de]"},
		{name: "language sharing a first letter", match: Match{Languages: []string{"de"}}, lead: Lead{Language: "dsb"}},
		{name: "language other", match: Match{Languages: []string{"de", "fr"}}, lead: Lead{Language: "en-US"}},
		{name: "language missing", match: Match{Languages: []string{"de"}}, lead: Lead{}, detail: "language (none)"},

		{name: "score at min", match: Match{Score: rng(score(70), nil)}, lead: Lead{Score: score(70)}, want: true},
		{name: "score below min", match: Match{Score: rng(score(70), nil)}, lead: Lead{Score: score(69)}, detail: "score 69 not in [70..]"},
		{name: "score 0 in range", match: Match{Score: rng(nil, score(30))}, lead: Lead{Score: score(0)}, want: true},
		{name: "score nil never matches", match: Match{Score: rng(nil, score(30))}, lead: Lead{}, detail: "score unknown"},
		{name: "score nil never matches full range", match: Match{Score: rng(score(0), score(100))}, lead: Lead{}},

		{name: "attribute equal", match: Match{Attributes: map[string]string{"tier": "gold"}}, lead: Lead{Attributes: map[string]string{"tier": "gold", "x": "y"}}, want: true},
		{name: "attribute case-sensitive", match: Match{Attributes: map[string]string{"tier": "gold"}}, lead: Lead{Attributes: map[string]string{"tier": "Gold"}}, detail: `attribute tier is "Gold", want "gold"`},
		{name: "attribute missing", match: Match{Attributes: map[string]string{"tier": "gold"}}, lead: Lead{}, detail: "attribute tier"},
		{name: "attribute empty value is not missing", match: Match{Attributes: map[string]string{"tier": ""}}, lead: Lead{}},
		{name: "attributes all required", match: Match{Attributes: map[string]string{"tier": "gold", "plan": "pro"}}, lead: Lead{Attributes: map[string]string{"tier": "gold"}}},
		{name: "attributes all present", match: Match{Attributes: map[string]string{"tier": "gold", "plan": "pro"}}, lead: Lead{Attributes: map[string]string{"tier": "gold", "plan": "pro"}}, want: true},

		{
			name:  "all criteria together",
			match: Match{Countries: []string{"US"}, EmployeeCount: rng(score(1000), nil), Sources: []string{"web"}, Score: rng(score(50), nil)},
			lead:  Lead{Country: "US", EmployeeCount: 5000, Source: "web", Score: score(90)},
			want:  true,
		},
		{
			name:   "one criterion of several fails",
			match:  Match{Countries: []string{"US"}, EmployeeCount: rng(score(1000), nil)},
			lead:   Lead{Country: "US", EmployeeCount: 10},
			detail: "employee count 10",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cc := compileRules(t, Rule{ID: "r", Match: tc.match})
			l := tc.lead
			rule, evals := cc.match(&l)
			if len(evals) != 1 || evals[0].RuleID != "r" {
				t.Fatalf("evaluations = %+v, want one for rule r", evals)
			}
			if evals[0].Detail == "" {
				t.Errorf("evaluation has an empty Detail")
			}
			if !tc.want {
				if rule != nil {
					t.Errorf("match() = rule %q, want no match", rule.id)
				}
				if evals[0].Matched {
					t.Errorf("evaluation Matched = true, want false")
				}
				if !strings.Contains(evals[0].Detail, tc.detail) {
					t.Errorf("Detail = %q, want it to contain %q", evals[0].Detail, tc.detail)
				}
				return
			}
			if rule == nil || rule.id != "r" {
				t.Fatalf("match() = %v, want rule r (miss: %q)", rule, evals[0].Detail)
			}
			if !evals[0].Matched {
				t.Errorf("evaluation Matched = false, want true")
			}
		})
	}
}

const matchOrderYAML = `
reps: [{id: ava}, {id: ben}]
pools:
  - {id: na, members: [{rep_id: ava}]}
  - {id: emea, members: [{rep_id: ben}]}
rules:
  - id: na-enterprise
    match: {countries: [us, CA], employee_count: {min: 1000}}
    targets: [{pool_id: na}]
  - id: na
    match: {countries: [US, CA]}
    targets: [{pool_id: na}]
  - id: dach-german
    match: {countries: [DE, AT, CH], languages: [de]}
    targets: [{pool_id: emea}]
  - id: hot
    match: {score: {min: 70}}
    targets: [{pool_id: emea}, {pool_id: na}]
  - id: default
    targets: [{pool_id: emea}]
`

func TestMatchOrder(t *testing.T) {
	load := func(t *testing.T, withDefault bool) *compiledConfig {
		t.Helper()
		cfg, err := ParseConfigYAML(strings.NewReader(matchOrderYAML))
		if err != nil {
			t.Fatal(err)
		}
		if !withDefault {
			cfg.Rules = cfg.Rules[:len(cfg.Rules)-1]
		}
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		return compile(cfg, nil)
	}
	allRules := []string{"na-enterprise", "na", "dach-german", "hot", "default"}
	tests := []struct {
		name        string
		noDefault   bool
		lead        Lead
		want        string // "" means no rule
		wantTargets []string
	}{
		{name: "first match wins over a later match", lead: Lead{Country: "US", EmployeeCount: 5000, Score: int32p(90)}, want: "na-enterprise", wantTargets: []string{"na"}},
		{name: "second rule", lead: Lead{Country: "CA", EmployeeCount: 20}, want: "na", wantTargets: []string{"na"}},
		{name: "unknown size skips the size rule", lead: Lead{Country: "us"}, want: "na", wantTargets: []string{"na"}},
		{name: "language and country", lead: Lead{Country: "AT", Language: "de-AT"}, want: "dach-german", wantTargets: []string{"emea"}},
		{name: "DACH without German falls through", lead: Lead{Country: "DE", Language: "en", Score: int32p(70)}, want: "hot", wantTargets: []string{"emea", "na"}},
		{name: "default catches the rest", lead: Lead{Country: "FR", Score: int32p(10)}, want: "default", wantTargets: []string{"emea"}},
		{name: "default catches an empty lead", lead: Lead{}, want: "default", wantTargets: []string{"emea"}},
		{name: "no default means no rule", noDefault: true, lead: Lead{Country: "FR"}},
		{name: "no default still matches", noDefault: true, lead: Lead{Score: int32p(100)}, want: "hot", wantTargets: []string{"emea", "na"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cc := load(t, !tc.noDefault)
			l := tc.lead
			rule, evals := cc.match(&l)
			if tc.want == "" {
				if rule != nil {
					t.Fatalf("match() = rule %q, want nil", rule.id)
				}
				if len(evals) != len(cc.rules) {
					t.Fatalf("%d evaluations, want one per rule (%d): %+v", len(evals), len(cc.rules), evals)
				}
				for i, e := range evals {
					if e.RuleID != allRules[i] || e.Matched || e.Detail == "" {
						t.Errorf("evals[%d] = %+v, want unmatched %q with a detail", i, e, allRules[i])
					}
				}
				return
			}
			if rule == nil {
				t.Fatalf("match() = nil, want rule %q; evaluations %+v", tc.want, evals)
			}
			if rule.id != tc.want {
				t.Fatalf("match() = rule %q, want %q; evaluations %+v", rule.id, tc.want, evals)
			}
			var pools []string
			for _, tg := range rule.targets {
				pools = append(pools, tg.PoolID)
			}
			if fmt.Sprint(pools) != fmt.Sprint(tc.wantTargets) {
				t.Errorf("targets = %v, want %v", pools, tc.wantTargets)
			}
			if len(evals) == 0 {
				t.Fatal("no evaluations")
			}
			last := evals[len(evals)-1]
			if !last.Matched || last.RuleID != tc.want || last.Detail == "" {
				t.Errorf("last evaluation = %+v, want matched %q with a detail", last, tc.want)
			}
			misses := evals[:len(evals)-1]
			for i, e := range misses {
				if e.RuleID != allRules[i] || e.Matched || e.Detail == "" {
					t.Errorf("evals[%d] = %+v, want unmatched %q with a detail", i, e, allRules[i])
				}
			}
			// Every rule before the matched one is listed.
			if allRules[len(misses)] != tc.want {
				t.Errorf("%d misses before %q, want every earlier rule listed: %+v", len(misses), tc.want, evals)
			}
		})
	}
}

func TestMatchDefaultRuleDetail(t *testing.T) {
	cc := compileRules(t, Rule{ID: "us", Match: Match{Countries: []string{"US"}}}, Rule{ID: "default"})
	l := Lead{Country: "FR"}
	rule, evals := cc.match(&l)
	if rule == nil || rule.id != "default" {
		t.Fatalf("match() = %v, want default", rule)
	}
	if len(evals) != 2 {
		t.Fatalf("evaluations = %+v, want 2", evals)
	}
	if want := "country FR not in [US]"; evals[0].Detail != want {
		t.Errorf("miss detail = %q, want %q", evals[0].Detail, want)
	}
	if want := "matches every lead (default rule)"; evals[1].Detail != want {
		t.Errorf("match detail = %q, want %q", evals[1].Detail, want)
	}
	l = Lead{Country: "us"}
	_, evals = cc.match(&l)
	if want := "matched: country in [US]"; len(evals) != 1 || evals[0].Detail != want {
		t.Errorf("evaluations = %+v, want one with detail %q", evals, want)
	}
}

func TestMatchTraceIsBounded(t *testing.T) {
	var rules []Rule
	for i := range maxRuleTrace + 10 {
		rules = append(rules, Rule{ID: fmt.Sprintf("r%02d", i), Match: Match{Sources: []string{fmt.Sprintf("s%d", i)}}})
	}
	rules = append(rules, Rule{ID: "default"})
	cc := compileRules(t, rules...)
	l := Lead{Source: "other"}
	rule, evals := cc.match(&l)
	if rule == nil || rule.id != "default" {
		t.Fatalf("match() = %v, want default", rule)
	}
	if len(evals) != maxRuleTrace+2 {
		t.Fatalf("%d evaluations, want %d", len(evals), maxRuleTrace+2)
	}
	for i, e := range evals[:maxRuleTrace] {
		if e.RuleID != rules[i].ID || e.Matched || e.Detail == "" {
			t.Errorf("evals[%d] = %+v", i, e)
		}
	}
	if e := evals[maxRuleTrace]; e.RuleID != "..." || e.Matched || e.Detail == "" {
		t.Errorf("summary evaluation = %+v", e)
	}
	if e := evals[len(evals)-1]; e.RuleID != "default" || !e.Matched {
		t.Errorf("last evaluation = %+v, want matched default", e)
	}
}
