package server

import (
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/leadrouter/leadrouter/engine"
	pb "github.com/leadrouter/leadrouter/gen/leadrouter/v1"
	"github.com/leadrouter/leadrouter/internal/pbconv"
)

// Conversions between the wire contract and the engine's types. Enum values
// that the engine does not know become "" and fail its validation with the
// field named.

var stateToProto = map[engine.State]pb.AssignmentState{
	engine.StateAssigned:   pb.AssignmentState_ASSIGNMENT_STATE_ASSIGNED,
	engine.StateQueued:     pb.AssignmentState_ASSIGNMENT_STATE_QUEUED,
	engine.StateUnroutable: pb.AssignmentState_ASSIGNMENT_STATE_UNROUTABLE,
	engine.StateClosed:     pb.AssignmentState_ASSIGNMENT_STATE_CLOSED,
	engine.StateOffered:    pb.AssignmentState_ASSIGNMENT_STATE_OFFERED,
}

var dispositionToProto = map[engine.Disposition]pb.Disposition{
	engine.Qualified: pb.Disposition_DISPOSITION_QUALIFIED,
	engine.Rejected:  pb.Disposition_DISPOSITION_REJECTED,
	engine.Recycled:  pb.Disposition_DISPOSITION_RECYCLED,
}

var dispositionFromProto = invert(dispositionToProto)

var breachToProto = map[engine.BreachPolicy]pb.BreachPolicy{
	engine.Notify:   pb.BreachPolicy_BREACH_POLICY_NOTIFY,
	engine.Reassign: pb.BreachPolicy_BREACH_POLICY_REASSIGN,
}

var breachFromProto = invert(breachToProto)

// viewFromProto reads a request's view; unset is FULL.
func viewFromProto(v pb.AssignmentView) (engine.View, error) {
	switch v {
	case pb.AssignmentView_ASSIGNMENT_VIEW_UNSPECIFIED, pb.AssignmentView_ASSIGNMENT_VIEW_FULL:
		return engine.ViewFull, nil
	case pb.AssignmentView_ASSIGNMENT_VIEW_BASIC:
		return engine.ViewBasic, nil
	}
	return 0, &engine.ValidationError{Violations: []engine.FieldViolation{{Field: "view",
		Description: fmt.Sprintf("%d is not one of ASSIGNMENT_VIEW_FULL, ASSIGNMENT_VIEW_BASIC", v)}}}
}

// assignmentViewToProto is the assignment as the view shows it: BASIC
// carries the decision only.
func assignmentViewToProto(a *engine.Assignment, view engine.View) *pb.Assignment {
	if view == engine.ViewFull {
		return assignmentToProto(a)
	}
	return &pb.Assignment{
		LeadId: a.LeadID, State: stateToProto[a.State], RepId: a.RepID, PoolId: a.PoolID, RuleId: a.RuleID,
		Route: a.Route, Reason: a.Reason, OfferExpiresAt: ts(a.OfferExpiresAt), DecidedAt: ts(a.DecidedAt),
		ConfigVersion: a.ConfigVersion,
	}
}

func assignmentToProto(a *engine.Assignment) *pb.Assignment {
	out := &pb.Assignment{
		LeadId: a.LeadID, State: stateToProto[a.State], RepId: a.RepID, PoolId: a.PoolID, RuleId: a.RuleID,
		Reason: a.Reason, ReceivedAt: ts(a.ReceivedAt), DecidedAt: ts(a.DecidedAt),
		ConfigVersion: a.ConfigVersion, Lead: pbconv.LeadToProto(&a.Lead),
		Trace: &pb.Trace{Summary: a.Trace.Summary}, Route: a.Route,
		ClosedAt: ts(a.ClosedAt), CloseReason: a.CloseReason,
		OfferExpiresAt: ts(a.OfferExpiresAt), Offers: int32(a.Offers), AcceptedAt: ts(a.AcceptedAt),
		FirstContactAt: ts(a.FirstContactAt), FirstContactChannel: a.FirstContactChannel, Contacts: int32(a.Contacts),
		FirstContactDueAt: ts(a.FirstContactDue), Disposition: dispositionToProto[a.Disposition], ReasonCode: a.ReasonCode,
	}
	if d := a.SpeedToLead(); d != 0 {
		out.SpeedToLead = durationpb.New(d)
	}
	// Every answer carries the history and the whole rule trace: their
	// messages are allocated together, one array each, not one by one.
	out.HistoryFolded = int32(a.HistoryFolded)
	if len(a.History) > 0 {
		events := make([]pb.LifecycleEvent, len(a.History))
		out.History = make([]*pb.LifecycleEvent, len(a.History))
		for i, h := range a.History {
			e := &events[i]
			e.At, e.Kind, e.RepId, e.Detail = ts(h.At), h.Kind, h.RepID, h.Detail
			out.History[i] = e
		}
	}
	out.Trace.Rules = rulesToProto(a.Trace.Rules)
	for _, t := range a.Trace.Targets {
		te := &pb.TargetEvaluation{PoolId: t.PoolID, Strategy: strategyToProto[t.Strategy],
			PreviousRepId: t.PreviousRepID, Outcome: t.Outcome, Label: t.Label}
		for _, s := range t.Skipped {
			te.Skipped = append(te.Skipped, &pb.SkipCount{Reason: s.Reason.Text(), Count: int32(s.Count)})
		}
		for _, c := range t.Candidates {
			te.Candidates = append(te.Candidates, &pb.Candidate{RepId: c.RepID, Chosen: c.Chosen, SkipReason: c.SkipReason})
		}
		out.Trace.Targets = append(out.Trace.Targets, te)
	}
	return out
}

var statusToProto = map[engine.RepStatus]pb.RepStatus{
	engine.StatusAvailable: pb.RepStatus_REP_STATUS_AVAILABLE,
	engine.StatusAway:      pb.RepStatus_REP_STATUS_AWAY,
	engine.StatusOffline:   pb.RepStatus_REP_STATUS_OFFLINE,
}

var statusFromProto = invert(statusToProto)

var strategyToProto = map[engine.Strategy]pb.Strategy{
	engine.StrategyRoundRobin:         pb.Strategy_STRATEGY_ROUND_ROBIN,
	engine.StrategyWeightedRoundRobin: pb.Strategy_STRATEGY_WEIGHTED_ROUND_ROBIN,
	engine.StrategyLeastLoaded:        pb.Strategy_STRATEGY_LEAST_LOADED,
	engine.StrategyLongestIdle:        pb.Strategy_STRATEGY_LONGEST_IDLE,
}

var policyToProto = map[engine.AbsencePolicy]pb.AbsencePolicy{
	engine.KeepPosition: pb.AbsencePolicy_ABSENCE_POLICY_KEEP_POSITION,
	engine.CatchUp:      pb.AbsencePolicy_ABSENCE_POLICY_CATCH_UP,
}

var policyFromProto = invert(policyToProto)

var strategyFromProto = invert(strategyToProto)

func invert[K, V comparable](m map[K]V) map[V]K {
	out := make(map[V]K, len(m))
	for k, v := range m {
		out[v] = k
	}
	return out
}

// repStatusFromProto maps UNSPECIFIED to "" and an unknown number to a value
// the engine rejects, naming it.
func repStatusFromProto(s pb.RepStatus) engine.RepStatus {
	if st, ok := statusFromProto[s]; ok {
		return st
	}
	if s == pb.RepStatus_REP_STATUS_UNSPECIFIED {
		return ""
	}
	return engine.RepStatus(s.String())
}

// ConfigFromProto converts a wire config to the engine's form (unvalidated).
func ConfigFromProto(c *pb.RoutingConfig) *engine.Config {
	out := &engine.Config{}
	for _, r := range c.GetReps() {
		rep := engine.Rep{ID: r.GetId(), Name: r.GetName(), Email: r.GetEmail(), Timezone: r.GetTimezone(),
			Attributes: r.GetAttributes(), MaxOpen: r.GetMaxOpen(), DailyCap: r.GetDailyCap()}
		if r.GetInitialStatus() != pb.RepStatus_REP_STATUS_UNSPECIFIED {
			rep.InitialStatus = repStatusFromProto(r.GetInitialStatus())
		}
		if wh := r.GetWorkingHours(); wh != nil {
			rep.WorkingHours = &engine.WorkingHours{Monday: wh.GetMonday(), Tuesday: wh.GetTuesday(),
				Wednesday: wh.GetWednesday(), Thursday: wh.GetThursday(), Friday: wh.GetFriday(),
				Saturday: wh.GetSaturday(), Sunday: wh.GetSunday()}
		}
		for _, d := range r.GetOutOfOffice() {
			rep.OutOfOffice = append(rep.OutOfOffice, engine.DateRange{From: d.GetFrom(), To: d.GetTo()})
		}
		out.Reps = append(out.Reps, rep)
	}
	for _, p := range c.GetPools() {
		pool := engine.Pool{ID: p.GetId(), Name: p.GetName(), CatchUpLimit: p.GetCatchUpLimit(),
			Strategy: enumFromProto(p.GetStrategy(), strategyFromProto), AbsencePolicy: enumFromProto(p.GetAbsencePolicy(), policyFromProto),
			RejectCooldown: durationFromProto(p.GetRejectCooldown()), MaxMissedOffers: p.MaxMissedOffers, MaxOffers: p.GetMaxOffers(),
			FirstContactWithin: durationFromProto(p.GetFirstContactWithin()), WarnAt: durationFromProto(p.GetWarnAt()),
			OnBreach: enumFromProto(p.GetOnBreach(), breachFromProto)}
		if p.AcceptWithin != nil {
			d := durationFromProto(p.GetAcceptWithin())
			pool.AcceptWithin = &d
		}
		for _, m := range p.GetMembers() {
			pool.Members = append(pool.Members, engine.Member{RepID: m.GetRepId(), Weight: m.Weight, DailyCap: m.GetDailyCap()})
		}
		out.Pools = append(out.Pools, pool)
	}
	for _, r := range c.GetRules() {
		rule := engine.Rule{ID: r.GetId(), Name: r.GetName(), Match: matchFromProto(r.GetMatch())}
		for _, t := range r.GetTargets() {
			rule.Targets = append(rule.Targets, engine.Target{PoolID: t.GetPoolId(),
				SkipIfUnavailable: t.GetSkipIfUnavailable(), Wait: durationFromProto(t.GetWait())})
		}
		out.Rules = append(out.Rules, rule)
	}
	for _, a := range c.GetAccounts() {
		out.Accounts = append(out.Accounts, engine.Account{Domain: a.GetDomain(), OwnerRepID: a.GetOwnerRepId(),
			FallbackPoolID: a.GetFallbackPoolId()})
	}
	for _, in := range c.GetIntakes() {
		sig := in.GetSignature()
		out.Intakes = append(out.Intakes, engine.Intake{ID: in.GetId(), SecretEnv: in.GetSecretEnv(), SecretFile: in.GetSecretFile(),
			Signature: engine.IntakeSignature{Scheme: engine.SignatureScheme(sig.GetScheme()), Header: sig.GetHeader(),
				Encoding: sig.GetEncoding(), Tolerance: durationFromProto(sig.GetTolerance())},
			LeadID: in.GetLeadId(), Mapping: in.GetMapping(), Defaults: in.GetDefaults(), Attributes: in.GetAttributes(),
			RatePerSecond: in.GetRatePerSecond(), Burst: in.GetBurst()})
	}
	for _, sk := range c.GetSinks() {
		out.Sinks = append(out.Sinks, sinkFromProto(sk))
	}
	if st := c.GetSettings(); st != nil {
		out.Settings.MaxQueueAge = durationFromProto(st.GetMaxQueueAge())
		out.Settings.EventsMaxLen = st.GetEventsMaxLen()
		out.Settings.PresenceFollowsConnection = st.GetPresenceFollowsConnection()
		out.Settings.PresenceGrace = durationFromProto(st.GetPresenceGrace())
		out.Settings.EventsMaxAge = durationFromProto(st.GetEventsMaxAge())
		out.Settings.RetainClosed = durationFromProto(st.GetRetainClosed())
		out.Settings.MaxStoredLeads = st.GetMaxStoredLeads()
		out.Settings.StickyIgnorePlus = st.GetStickyIgnorePlus()
		if st.StickyWindow != nil {
			d := durationFromProto(st.GetStickyWindow())
			out.Settings.StickyWindow = &d
		}
	}
	return out
}

// enumFromProto maps UNSPECIFIED (0) to "" (the engine's default) and an
// unknown number to its name, which validation then rejects by name.
func enumFromProto[E interface {
	~int32
	String() string
}, V ~string](e E, known map[E]V) V {
	if v, ok := known[e]; ok {
		return v
	}
	if e == 0 {
		return ""
	}
	return V(e.String())
}

func durationFromProto(d *durationpb.Duration) engine.Duration {
	if d == nil {
		return 0
	}
	return engine.Duration(d.AsDuration())
}

func durationToProto(d engine.Duration) *durationpb.Duration {
	if d == 0 {
		return nil
	}
	return durationpb.New(time.Duration(d))
}

func matchFromProto(m *pb.Match) engine.Match {
	if m == nil {
		return engine.Match{}
	}
	return engine.Match{
		Countries: m.GetCountries(), Regions: m.GetRegions(), PostalPrefixes: m.GetPostalPrefixes(),
		Industries: m.GetIndustries(), EmployeeCount: rangeFromProto(m.GetEmployeeCount()),
		Sources: m.GetSources(), Products: m.GetProducts(), Languages: m.GetLanguages(),
		Score: rangeFromProto(m.GetScore()), Attributes: m.GetAttributes(),
	}
}

func rangeFromProto(r *pb.IntRange) *engine.IntRange {
	if r == nil {
		return nil
	}
	return &engine.IntRange{Min: r.Min, Max: r.Max}
}

func rangeToProto(r *engine.IntRange) *pb.IntRange {
	if r == nil {
		return nil
	}
	return &pb.IntRange{Min: r.Min, Max: r.Max}
}

func repToProto(r *engine.Rep) *pb.Rep {
	out := &pb.Rep{Id: r.ID, Name: r.Name, Email: r.Email, Timezone: r.Timezone, Attributes: r.Attributes,
		InitialStatus: statusToProto[r.InitialStatus], MaxOpen: r.MaxOpen, DailyCap: r.DailyCap}
	if wh := r.WorkingHours; wh != nil {
		out.WorkingHours = &pb.WorkingHours{Monday: wh.Monday, Tuesday: wh.Tuesday, Wednesday: wh.Wednesday,
			Thursday: wh.Thursday, Friday: wh.Friday, Saturday: wh.Saturday, Sunday: wh.Sunday}
	}
	for _, d := range r.OutOfOffice {
		out.OutOfOffice = append(out.OutOfOffice, &pb.DateRange{From: d.From, To: d.To})
	}
	return out
}

// ConfigToProto converts an engine config to its wire form.
func ConfigToProto(c *engine.Config) *pb.RoutingConfig {
	out := &pb.RoutingConfig{}
	for i := range c.Reps {
		out.Reps = append(out.Reps, repToProto(&c.Reps[i]))
	}
	for _, p := range c.Pools {
		pool := &pb.Pool{Id: p.ID, Name: p.Name, Strategy: strategyToProto[p.Strategy],
			AbsencePolicy: policyToProto[p.AbsencePolicy], CatchUpLimit: p.CatchUpLimit,
			RejectCooldown: durationToProto(p.RejectCooldown), MaxMissedOffers: p.MaxMissedOffers, MaxOffers: p.MaxOffers,
			FirstContactWithin: durationToProto(p.FirstContactWithin), WarnAt: durationToProto(p.WarnAt),
			OnBreach: breachToProto[p.OnBreach]}
		if p.AcceptWithin != nil {
			pool.AcceptWithin = durationpb.New(time.Duration(*p.AcceptWithin))
		}
		for _, m := range p.Members {
			pool.Members = append(pool.Members, &pb.PoolMember{RepId: m.RepID, Weight: m.Weight, DailyCap: m.DailyCap})
		}
		out.Pools = append(out.Pools, pool)
	}
	for _, r := range c.Rules {
		m := r.Match
		rule := &pb.Rule{Id: r.ID, Name: r.Name, Match: &pb.Match{
			Countries: m.Countries, Regions: m.Regions, PostalPrefixes: m.PostalPrefixes,
			Industries: m.Industries, EmployeeCount: rangeToProto(m.EmployeeCount), Sources: m.Sources,
			Products: m.Products, Languages: m.Languages, Score: rangeToProto(m.Score), Attributes: m.Attributes,
		}}
		for _, t := range r.Targets {
			rule.Targets = append(rule.Targets, &pb.Target{PoolId: t.PoolID, SkipIfUnavailable: t.SkipIfUnavailable,
				Wait: durationToProto(t.Wait)})
		}
		out.Rules = append(out.Rules, rule)
	}
	for _, a := range c.Accounts {
		out.Accounts = append(out.Accounts, &pb.Account{Domain: a.Domain, OwnerRepId: a.OwnerRepID, FallbackPoolId: a.FallbackPoolID})
	}
	for _, in := range c.Intakes {
		out.Intakes = append(out.Intakes, &pb.Intake{Id: in.ID, SecretEnv: in.SecretEnv, SecretFile: in.SecretFile,
			Signature: &pb.IntakeSignature{Scheme: string(in.Signature.Scheme), Header: in.Signature.Header,
				Encoding: in.Signature.Encoding, Tolerance: durationToProto(in.Signature.Tolerance)},
			LeadId: in.LeadID, Mapping: in.Mapping, Defaults: in.Defaults, Attributes: in.Attributes,
			RatePerSecond: in.RatePerSecond, Burst: in.Burst})
	}
	for _, sk := range c.Sinks {
		out.Sinks = append(out.Sinks, sinkToProto(sk))
	}
	if c.Settings != (engine.Settings{}) {
		out.Settings = &pb.WorkspaceSettings{MaxQueueAge: durationToProto(c.Settings.MaxQueueAge),
			EventsMaxLen: c.Settings.EventsMaxLen, EventsMaxAge: durationToProto(c.Settings.EventsMaxAge),
			PresenceFollowsConnection: c.Settings.PresenceFollowsConnection, PresenceGrace: durationToProto(c.Settings.PresenceGrace),
			RetainClosed: durationToProto(c.Settings.RetainClosed), MaxStoredLeads: c.Settings.MaxStoredLeads,
			StickyIgnorePlus: c.Settings.StickyIgnorePlus}
		if c.Settings.StickyWindow != nil {
			out.Settings.StickyWindow = durationpb.New(time.Duration(*c.Settings.StickyWindow))
		}
	}
	return out
}

func repStateToProto(r *engine.RepState) *pb.RepState {
	return &pb.RepState{
		Rep: repToProto(&r.Rep), Status: statusToProto[r.Status], StatusChangedAt: ts(r.StatusChangedAt),
		PoolIds: r.PoolIDs, AssignedTotal: r.AssignedTotal, LastAssignedAt: ts(r.LastAssignedAt),
		OpenAssignments: r.Open, AssignedToday: r.AssignedToday,
	}
}

// rulesToProto converts a rule trace, in one allocation of its entries.
func rulesToProto(rs []engine.RuleEvaluation) []*pb.RuleEvaluation {
	if len(rs) == 0 {
		return nil
	}
	rules := make([]pb.RuleEvaluation, len(rs))
	out := make([]*pb.RuleEvaluation, len(rs))
	for i, r := range rs {
		e := &rules[i]
		e.RuleId, e.Matched, e.Detail = r.RuleID, r.Matched, r.Detail
		out[i] = e
	}
	return out
}

// simulationToProto converts a SimulateConfig result.
func simulationToProto(sim *engine.Simulation) *pb.SimulateConfigResponse {
	out := &pb.SimulateConfigResponse{Replayed: int32(sim.Replayed), ChangedTotal: int32(sim.ChangedTotal),
		UnroutableBefore: int32(sim.UnroutableBefore), UnroutableAfter: int32(sim.UnroutableAfter),
		BecomeUnroutable: int32(sim.BecomeUnroutable), Note: sim.Note}
	if sim.Replayed > 0 {
		out.Oldest, out.Newest = ts(sim.Oldest), ts(sim.Newest)
	}
	counts := func(cs []engine.SimulatedCount) []*pb.SimulatedCount {
		var o []*pb.SimulatedCount
		for _, c := range cs {
			o = append(o, &pb.SimulatedCount{Id: c.ID, Before: int32(c.Before), After: int32(c.After)})
		}
		return o
	}
	out.Rules, out.Pools = counts(sim.Rules), counts(sim.Pools)
	route := func(r engine.SimulatedRoute) *pb.SimulatedRoute {
		return &pb.SimulatedRoute{RuleId: r.RuleID, PoolId: r.PoolID, Rules: rulesToProto(r.Rules)}
	}
	for _, c := range sim.Changed {
		out.Changed = append(out.Changed, &pb.SimulatedChange{LeadId: c.LeadID, ReceivedAt: ts(c.ReceivedAt),
			Before: route(c.Before), After: route(c.After)})
	}
	for _, p := range sim.Shares {
		ps := &pb.PoolShare{PoolId: p.PoolID, Strategy: strategyToProto[p.Strategy], Leads: int32(p.Leads)}
		for _, m := range p.Members {
			ps.Members = append(ps.Members, &pb.MemberShare{RepId: m.RepID, Weight: m.Weight, Share: m.Share, Expected: m.Expected})
		}
		out.Shares = append(out.Shares, ps)
	}
	return out
}

func ts(t time.Time) *timestamppb.Timestamp { return pbconv.Timestamp(t) }

func applyResultToProto(r *engine.ApplyResult) *pb.ApplyRoutingConfigResponse {
	out := &pb.ApplyRoutingConfigResponse{Version: r.Version, DryRun: r.DryRun, MovedLeadIds: r.Moved,
		Diff: &pb.ConfigDiff{Summary: r.Diff.Summary()}, Impact: &pb.ConfigImpact{}}
	for _, c := range r.Diff.Changes {
		out.Diff.Changes = append(out.Diff.Changes, &pb.ConfigChange{Section: c.Section, Id: c.ID, Op: c.Op, Fields: c.Fields})
	}
	if i := r.Impact; i != nil {
		out.Impact.HeldTotal, out.Impact.QueuedTotal = int64(i.HeldTotal), int64(i.QueuedTotal)
		for _, h := range i.Held {
			out.Impact.Held = append(out.Impact.Held, &pb.OrphanedLead{LeadId: h.LeadID, RepId: h.RepID, State: stateToProto[h.State]})
		}
		for _, q := range i.Queued {
			out.Impact.Queued = append(out.Impact.Queued, &pb.OrphanedLead{LeadId: q.LeadID, PoolId: q.PoolID,
				State: pb.AssignmentState_ASSIGNMENT_STATE_QUEUED})
		}
		for _, m := range i.Leaving {
			out.Impact.Leaving = append(out.Impact.Leaving, &pb.PoolMembership{PoolId: m.PoolID, RepId: m.RepID})
		}
	}
	return out
}

func sinkFromProto(s *pb.Sink) engine.Sink {
	out := engine.Sink{ID: s.GetId(), Kind: engine.SinkKind(s.GetKind()), URL: s.GetUrl(),
		SecretEnv: s.GetSecretEnv(), SecretFile: s.GetSecretFile(), DSNEnv: s.GetDsnEnv(), DSNFile: s.GetDsnFile(),
		Concurrency: s.GetConcurrency(), Timeout: durationFromProto(s.GetTimeout()), MaxRetryAge: durationFromProto(s.GetMaxRetryAge())}
	for _, k := range s.GetKinds() {
		out.Kinds = append(out.Kinds, engine.EventKind(k))
	}
	if t := s.GetSlack(); t != nil {
		out.Slack = &engine.SlackTargets{LinkTemplate: t.GetLinkTemplate(), Show: t.GetShow()}
		for _, c := range t.GetChannels() {
			out.Slack.Channels = append(out.Slack.Channels, slackChannelFromProto(c))
		}
		if m := t.GetManager(); m != nil {
			ch := slackChannelFromProto(m)
			out.Slack.Manager = &ch
		}
	}
	return out
}

func slackChannelFromProto(c *pb.SlackChannel) engine.SlackChannel {
	return engine.SlackChannel{Pool: c.GetPool(), Rep: c.GetRep(), URLEnv: c.GetUrlEnv(), URLFile: c.GetUrlFile()}
}

func sinkToProto(s engine.Sink) *pb.Sink {
	out := &pb.Sink{Id: s.ID, Kind: string(s.Kind), Url: s.URL, SecretEnv: s.SecretEnv, SecretFile: s.SecretFile,
		DsnEnv: s.DSNEnv, DsnFile: s.DSNFile, Concurrency: s.Concurrency, Timeout: durationToProto(s.Timeout),
		MaxRetryAge: durationToProto(s.MaxRetryAge)}
	for _, k := range s.Kinds {
		out.Kinds = append(out.Kinds, string(k))
	}
	if t := s.Slack; t != nil {
		out.Slack = &pb.SlackTargets{LinkTemplate: t.LinkTemplate, Show: t.Show}
		for _, c := range t.Channels {
			out.Slack.Channels = append(out.Slack.Channels, slackChannelToProto(c))
		}
		if t.Manager != nil {
			out.Slack.Manager = slackChannelToProto(*t.Manager)
		}
	}
	return out
}

func slackChannelToProto(c engine.SlackChannel) *pb.SlackChannel {
	return &pb.SlackChannel{Pool: c.Pool, Rep: c.Rep, UrlEnv: c.URLEnv, UrlFile: c.URLFile}
}
