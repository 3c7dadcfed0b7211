package main

import (
	"fmt"
	"time"

	"github.com/leadrouter/leadrouter/engine"
)

// benchConfig is the routing config the benchmark applies: a B2B sales
// organisation modelled on examples/routing.yaml, larger (60 reps, 10
// pools, 13 rules, 10 owned accounts) and tuned so that every lead can be
// placed at once. Every pool assigns directly (accept_within 0: no offer
// waits for an accept), no rep has working hours, a daily cap or max_open
// (so nobody becomes ineligible and nothing queues however many leads the
// run sends), and two pools carry a 30-minute first-contact SLA, so those
// assignments also start SLA timers, as they would in production. All four
// strategies are used.
func benchConfig() *engine.Config {
	cfg := &engine.Config{}
	now := engine.Duration(0)
	sla := engine.Duration(30 * time.Minute)

	// team adds n reps named prefix-1..prefix-n, cycling through zones,
	// and returns their ids.
	team := func(prefix string, n int, zones []string, attrs map[string]string) []string {
		ids := make([]string, n)
		for i := range n {
			id := fmt.Sprintf("%s-%d", prefix, i+1)
			ids[i] = id
			cfg.Reps = append(cfg.Reps, engine.Rep{
				ID: id, Name: fmt.Sprintf("Rep %s %d", prefix, i+1), Email: id + "@example.com",
				Timezone: zones[i%len(zones)], Attributes: attrs,
			})
		}
		return ids
	}
	members := func(ids ...[]string) []engine.Member {
		var out []engine.Member
		for _, list := range ids {
			for _, id := range list {
				out = append(out, engine.Member{RepID: id})
			}
		}
		return out
	}
	weighted := func(ids []string) []engine.Member {
		out := make([]engine.Member, len(ids))
		for i, id := range ids {
			w := int32(1 + i%3)
			out[i] = engine.Member{RepID: id, Weight: &w}
		}
		return out
	}

	ent := team("ent", 8, []string{"America/New_York", "America/Chicago"}, map[string]string{"segment": "enterprise"})
	west := team("west", 6, []string{"America/Los_Angeles"}, nil)
	east := team("east", 6, []string{"America/New_York"}, nil)
	latam := team("latam", 4, []string{"America/Sao_Paulo", "America/Mexico_City"}, map[string]string{"languages": "es,pt,en"})
	dach := team("dach", 5, []string{"Europe/Berlin", "Europe/Vienna", "Europe/Zurich"}, map[string]string{"languages": "de,en"})
	fr := team("fr", 3, []string{"Europe/Paris"}, map[string]string{"languages": "fr,en"})
	emea := team("emea", 8, []string{"Europe/London", "Europe/Dublin", "Europe/Amsterdam", "Europe/Madrid", "Europe/Stockholm"}, nil)
	apac := team("apac", 6, []string{"Australia/Sydney", "Asia/Singapore", "Asia/Tokyo"}, nil)
	health := team("health", 4, []string{"America/Denver", "America/Chicago"}, map[string]string{"vertical": "healthcare"})
	inbound := team("inbound", 10, []string{"America/New_York", "America/Chicago", "America/Los_Angeles"}, nil)

	pool := func(id string, s engine.Strategy, m []engine.Member) engine.Pool {
		return engine.Pool{ID: id, Name: id, Strategy: s, Members: m, AcceptWithin: &now}
	}
	cfg.Pools = []engine.Pool{
		pool("na-enterprise", engine.StrategyRoundRobin, members(ent)),
		pool("na-west", engine.StrategyRoundRobin, members(west)),
		pool("na-east", engine.StrategyRoundRobin, members(east, ent[:2])),
		pool("latam", engine.StrategyLongestIdle, members(latam)),
		pool("emea-dach", engine.StrategyRoundRobin, members(dach)),
		pool("emea-france", engine.StrategyRoundRobin, members(fr)),
		pool("emea", engine.StrategyWeightedRoundRobin, weighted(append(append([]string{}, emea...), dach[0], fr[0]))),
		pool("apac", engine.StrategyLeastLoaded, members(apac)),
		pool("healthcare", engine.StrategyLeastLoaded, members(health)),
		pool("inbound", engine.StrategyLongestIdle, members(inbound, west[:2], east[:2])),
	}
	cfg.Pools[0].FirstContactWithin = sla // enterprise leads get the speed-to-lead SLA
	cfg.Pools[9].FirstContactWithin = sla // as do the inbound catch-all's
	cfg.Pools[6].AbsencePolicy = engine.KeepPosition

	thousand := int32(1000)
	seventy := int32(70)
	targets := func(ids ...string) []engine.Target {
		out := make([]engine.Target, len(ids))
		for i, id := range ids {
			out[i] = engine.Target{PoolID: id}
		}
		return out
	}
	cfg.Rules = []engine.Rule{
		{ID: "na-enterprise", Match: engine.Match{Countries: []string{"US", "CA"}, EmployeeCount: &engine.IntRange{Min: &thousand}},
			Targets: targets("na-enterprise", "na-east")},
		{ID: "healthcare", Match: engine.Match{Industries: []string{"healthcare", "hospital & health care", "biotechnology"}},
			Targets: targets("healthcare", "inbound")},
		{ID: "us-west", Match: engine.Match{Countries: []string{"US"}, Regions: []string{"CA", "OR", "WA", "NV", "AZ", "UT"}},
			Targets: targets("na-west", "inbound")},
		{ID: "ny-metro", Match: engine.Match{Countries: []string{"US"}, PostalPrefixes: []string{"100", "101", "102", "103", "104", "112", "113", "114"}},
			Targets: targets("na-east")},
		{ID: "us-east", Match: engine.Match{Countries: []string{"US"}, Regions: []string{"NY", "NJ", "MA", "PA", "FL", "GA", "VA", "NC"}},
			Targets: targets("na-east", "inbound")},
		{ID: "dach-german", Match: engine.Match{Countries: []string{"DE", "AT", "CH"}, Languages: []string{"de"}},
			Targets: targets("emea-dach", "emea")},
		{ID: "france-french", Match: engine.Match{Countries: []string{"FR", "BE", "LU"}, Languages: []string{"fr"}},
			Targets: targets("emea-france", "emea")},
		{ID: "emea", Match: engine.Match{Countries: []string{"GB", "IE", "FR", "BE", "NL", "LU", "DE", "AT", "CH", "ES", "PT", "IT", "SE", "NO", "DK", "FI", "PL"}},
			Targets: targets("emea")},
		{ID: "latam", Match: engine.Match{Countries: []string{"BR", "MX", "AR", "CO", "CL"}},
			Targets: targets("latam", "inbound")},
		{ID: "apac", Match: engine.Match{Countries: []string{"AU", "NZ", "SG", "JP", "IN"}},
			Targets: targets("apac")},
		{ID: "enterprise-plan", Match: engine.Match{Attributes: map[string]string{"plan": "enterprise"}},
			Targets: targets("na-enterprise", "inbound")},
		{ID: "hot-demo-requests", Match: engine.Match{Sources: []string{"demo_request"}, Score: &engine.IntRange{Min: &seventy}},
			Targets: targets("inbound", "na-east")},
		{ID: "default", Targets: targets("inbound")},
	}
	for i, d := range ownedDomains {
		a := engine.Account{Domain: d, OwnerRepID: ent[i%len(ent)]}
		if i%2 == 0 {
			a.FallbackPoolID = "na-enterprise"
		}
		cfg.Accounts = append(cfg.Accounts, a)
	}
	return cfg
}

// ownedDomains are the company domains of benchConfig's accounts; a few
// leads come from them (lead-to-account matching).
var ownedDomains = []string{
	"initech.com", "umbrella-health.com", "globex.com", "soylent.com", "hooli.com",
	"vandelay.com", "wonka.com", "cyberdyne.com", "tyrell.com", "massive-dynamic.com",
}
