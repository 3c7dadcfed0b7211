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
	rule, evals := cc.match(l)
	d := &DecideRequest{
		Workspace: ws, ConfigVersion: cc.version, ConfigID: cc.id, Lead: l, ReceivedAt: now,
		Rules: evals, DryRun: dryRun, StickyWindow: cc.cfg.Settings.Sticky(), Local: cc.localTimes(now),
		Person: cc.personOf(l.Email),
	}
	d.ExpireAt = cc.expireAt(now)
	d.Quota, d.Retain = cc.cfg.Settings.StoredQuota(), cc.cfg.Settings.Retain()
	if acct := cc.account(l.CompanyDomain); acct != nil {
		d.Owner, d.Domain = acct.OwnerRepID, acct.Domain
		if acct.FallbackPoolID != "" {
			d.Rules = []RuleEvaluation{{RuleID: "account:" + acct.Domain, Matched: true,
				Detail: fmt.Sprintf("company domain %s is owned by %s; fallback pool %s instead of the rules", acct.Domain, acct.OwnerRepID, acct.FallbackPoolID)}}
			d.Targets = []DecisionTarget{{Pool: cc.pools[acct.FallbackPoolID]}}
			d.QueuedReason = fmt.Sprintf("account owner %s and fallback pool %s unavailable", acct.OwnerRepID, acct.FallbackPoolID)
			return d
		}
	}
	if rule == nil {
		d.UnroutableReason = "no rule matched and the config has no default rule"
		return d
	}
	d.RuleID = rule.id
	d.Targets = cc.targets(rule.targets)
	d.QueuedReason = "nobody eligible in " + poolList(rule.targets)
	return d
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
