package engine

import (
	"fmt"
	"strings"
	"time"
)

// decision prepares the store's half of a decision for a new lead: the
// sticky window, the account owner, the matched rule and its targets (or
// the account's fallback pool), and the texts to record when nobody can
// take the lead.
func (cc *compiledConfig) decision(ws string, l *Lead, now time.Time, dryRun bool) *DecideRequest {
	rt := cc.route(l)
	d := &DecideRequest{
		Workspace: ws, ConfigVersion: cc.version, ConfigID: cc.id, Lead: l, ReceivedAt: now,
		Rules: rt.evals, DryRun: dryRun, StickyWindow: cc.cfg.Settings.Sticky(), Local: cc.localTimes(now),
		Person: cc.personOf(l.Email),
	}
	d.ExpireAt = cc.expireAt(now)
	d.Quota, d.Retain = cc.cfg.Settings.StoredQuota(), cc.cfg.Settings.Retain()
	if acct := rt.account; acct != nil {
		d.Owner, d.Domain = acct.OwnerRepID, acct.Domain
		if acct.FallbackPoolID != "" {
			d.Targets = []DecisionTarget{{Pool: cc.pools[acct.FallbackPoolID]}}
			d.QueuedReason = fmt.Sprintf("account owner %s and fallback pool %s unavailable", acct.OwnerRepID, acct.FallbackPoolID)
			return d
		}
	}
	if rt.rule == nil {
		d.UnroutableReason = "no rule matched and the config has no default rule"
		return d
	}
	d.RuleID = rt.rule.id
	d.Targets = cc.targets(rt.rule.targets)
	d.QueuedReason = "nobody eligible in " + poolList(rt.rule.targets)
	return d
}

// routing is where a config sends a lead before any rep is looked at: the
// account owning its company (tried first), then the account's fallback
// pool instead of the rules, or the first rule that matches.
type routing struct {
	account *Account      // nil: no account owns the company domain
	rule    *compiledRule // nil: the account's fallback pool, or no rule matched
	evals   []RuleEvaluation
}

// route matches a lead against the config's accounts and rules; it reads
// no state, so a simulation replays it for any config (simulate.go).
func (cc *compiledConfig) route(l *Lead) routing {
	acct := cc.account(l.CompanyDomain)
	if acct != nil && acct.FallbackPoolID != "" {
		return routing{account: acct, evals: []RuleEvaluation{{RuleID: "account:" + acct.Domain, Matched: true,
			Detail: fmt.Sprintf("company domain %s is owned by %s; fallback pool %s instead of the rules", acct.Domain, acct.OwnerRepID, acct.FallbackPoolID)}}}
	}
	rule, evals := cc.match(l)
	return routing{account: acct, rule: rule, evals: evals}
}

// ruleLabel is the rule a routing counts under: the matched rule's id, an
// account's fallback "account:<domain>", or "" when nothing matched.
func (rt routing) ruleLabel() string {
	switch {
	case rt.rule != nil:
		return rt.rule.id
	case rt.account != nil && rt.account.FallbackPoolID != "":
		return "account:" + rt.account.Domain
	}
	return ""
}

// firstPool is the first pool the routing tries: the account's fallback or
// the rule's first target ("" when nothing matched).
func (rt routing) firstPool() string {
	switch {
	case rt.rule != nil && len(rt.rule.targets) > 0:
		return rt.rule.targets[0].PoolID
	case rt.rule == nil && rt.account != nil:
		return rt.account.FallbackPoolID
	}
	return ""
}

// expireAt is when a lead queued now becomes UNROUTABLE (zero: never).
func (cc *compiledConfig) expireAt(now time.Time) time.Time {
	if age := time.Duration(cc.cfg.Settings.MaxQueueAge); age > 0 {
		return now.Add(age)
	}
	return time.Time{}
}

// targets resolves a rule's targets to their pools.
func (cc *compiledConfig) targets(ts []Target) []DecisionTarget {
	out := make([]DecisionTarget, len(ts))
	for i, t := range ts {
		out[i] = DecisionTarget{Pool: cc.pools[t.PoolID], SkipIfUnavailable: t.SkipIfUnavailable, Wait: time.Duration(t.Wait)}
	}
	return out
}

// account finds the account owning a company domain, or of a parent domain
// ("eu.acme.com" is owned by the account of "acme.com").
func (cc *compiledConfig) account(domain string) *Account {
	domain = strings.TrimPrefix(domain, "www.")
	for domain != "" {
		if a := cc.accounts[domain]; a != nil {
			return a
		}
		_, rest, ok := strings.Cut(domain, ".")
		if !ok || !strings.Contains(rest, ".") {
			return nil
		}
		domain = rest
	}
	return nil
}

// ruleByID returns a rule of the config.
func (cc *compiledConfig) ruleByID(id string) *compiledRule {
	for i := range cc.rules {
		if cc.rules[i].id == id {
			return &cc.rules[i]
		}
	}
	return nil
}

func poolList(ts []Target) string {
	ids := make([]string, len(ts))
	for i, t := range ts {
		ids[i] = t.PoolID
	}
	return strings.Join(ids, ", ")
}
