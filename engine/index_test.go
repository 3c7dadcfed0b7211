package engine

import (
	"fmt"
	"math/rand"
	"testing"
)

// TestIndexAgreesWithScan: on random territory configs and leads, the
// indexed search finds exactly the rule a scan of every rule finds.
func TestIndexAgreesWithScan(t *testing.T) {
	rng := rand.New(rand.NewSource(42))
	countries := []string{"US", "CA", "DE", "FR", "GB"}
	regions := []string{"CA", "NY", "TX", "Bavaria", "ON"}
	pick := func(list []string) []string {
		if rng.Intn(2) == 0 {
			return nil
		}
		out := []string{list[rng.Intn(len(list))]}
		if rng.Intn(3) == 0 {
			out = append(out, list[rng.Intn(len(list))])
		}
		return out
	}
	for round := 0; round < 200; round++ {
		cfg := &Config{Reps: []Rep{{ID: "a"}}, Pools: []Pool{{ID: "p", Members: []Member{{RepID: "a"}}}}}
		n := 40 + rng.Intn(80)
		for i := 0; i < n; i++ {
			m := Match{Countries: pick(countries), Regions: pick(regions)}
			if rng.Intn(2) == 0 {
				m.PostalPrefixes = []string{fmt.Sprint(rng.Intn(100))}
			}
			if rng.Intn(4) == 0 {
				m.Sources = []string{"demo_request"}
			}
			if m.IsZero() {
				m.Industries = []string{"software"}
			}
			cfg.Rules = append(cfg.Rules, Rule{ID: fmt.Sprint("r", i), Match: m, Targets: []Target{{PoolID: "p"}}})
		}
		if rng.Intn(2) == 0 {
			cfg.Rules = append(cfg.Rules, Rule{ID: "default", Targets: []Target{{PoolID: "p"}}})
		}
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		cc := compile(cfg, nil)
		for k := 0; k < 50; k++ {
			l := Lead{Country: countries[rng.Intn(len(countries))], Region: regions[rng.Intn(len(regions))],
				PostalCode: fmt.Sprint(rng.Intn(100000)), Industry: "software"}
			if rng.Intn(3) == 0 {
				l.Source = "demo_request"
			}
			if rng.Intn(5) == 0 {
				l.Country, l.PostalCode = "", ""
			}
			scanned, _ := cc.scan(&l)
			searched, evals := cc.search(&l)
			if (scanned == nil) != (searched == nil) || (scanned != nil && scanned.id != searched.id) {
				t.Fatalf("round %d lead %+v: scan found %v, index found %v (trace %+v)", round, l, ruleID(scanned), ruleID(searched), evals)
			}
		}
	}
}

func ruleID(r *compiledRule) string {
	if r == nil {
		return "<none>"
	}
	return r.id
}

// BenchmarkMatch compares matching against a 10-rule config and a
// 10,000-territory config in the same run.
func BenchmarkMatch(b *testing.B) {
	for _, size := range []int{10, 10_000} {
		cfg := territoryConfig(size)
		if err := cfg.Validate(); err != nil {
			b.Fatal(err)
		}
		cc := compile(cfg, nil)
		b.Run(fmt.Sprint(size, "-rules"), func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				l := Lead{Country: "US", Region: "CA", PostalCode: fmt.Sprintf("%05d", (i*7919)%100000)}
				if r, _ := cc.match(&l); r == nil {
					b.Fatal("no match")
				}
			}
		})
	}
}

// territoryConfig is n US postal-prefix territories (3-digit, then 4-digit
// prefixes), one rep per pool, and a default rule.
func territoryConfig(n int) *Config {
	cfg := &Config{}
	for i := 0; i < n; i++ {
		prefix := fmt.Sprintf("%03d", i)
		if i >= 1000 {
			prefix = fmt.Sprintf("%04d", i)
		}
		id := fmt.Sprint("t", i)
		cfg.Reps = append(cfg.Reps, Rep{ID: id})
		cfg.Pools = append(cfg.Pools, Pool{ID: id, Members: []Member{{RepID: id}}})
		cfg.Rules = append(cfg.Rules, Rule{ID: id, Match: Match{Countries: []string{"US"}, PostalPrefixes: []string{prefix}},
			Targets: []Target{{PoolID: id}}})
	}
	cfg.Rules = append(cfg.Rules, Rule{ID: "default", Targets: []Target{{PoolID: "t0"}}})
	return cfg
}
