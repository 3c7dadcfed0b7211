package engine

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // reps' time zones must resolve on machines without zoneinfo

	"gopkg.in/yaml.v3"
)

// RepStatus is a rep's declared presence. The values are stored as they are.
type RepStatus string

// The declared presences. Only StatusAvailable reps are eligible.
const (
	StatusAvailable RepStatus = "AVAILABLE"
	StatusAway      RepStatus = "AWAY"
	StatusOffline   RepStatus = "OFFLINE"
)

// upperText reads an enum value written in any case ("away", "Away").
func upperText[T ~string](dst *T, b []byte) error {
	*dst = T(strings.ToUpper(string(b)))
	return nil
}

// Valid reports whether s is one of the declared presences.
func (s RepStatus) Valid() bool {
	return s == StatusAvailable || s == StatusAway || s == StatusOffline
}

// UnmarshalText accepts any case ("away", "Away", "AWAY").
func (s *RepStatus) UnmarshalText(b []byte) error { return upperText(s, b) }

// Strategy is how a pool distributes leads among its eligible members.
type Strategy string

// Strategies. StrategyRoundRobin is the default.
const (
	StrategyRoundRobin         Strategy = "ROUND_ROBIN"
	StrategyWeightedRoundRobin Strategy = "WEIGHTED_ROUND_ROBIN"
	StrategyLeastLoaded        Strategy = "LEAST_LOADED"
	StrategyLongestIdle        Strategy = "LONGEST_IDLE"
)

func (s Strategy) valid() bool {
	switch s {
	case StrategyRoundRobin, StrategyWeightedRoundRobin, StrategyLeastLoaded, StrategyLongestIdle:
		return true
	}
	return false
}

// AbsencePolicy is what a member returning from away or offline gets.
type AbsencePolicy string

// Absence policies. KeepPosition is the default.
const (
	KeepPosition AbsencePolicy = "KEEP_POSITION"
	CatchUp      AbsencePolicy = "CATCH_UP"
)

// UnmarshalText accepts any case ("catch_up").
func (p *AbsencePolicy) UnmarshalText(b []byte) error { return upperText(p, b) }

// Size limits of one routing config. They keep every apply one bounded
// script call and every decision's key list short.
const (
	MaxReps        = 50_000
	MaxPools       = 10_000
	MaxPoolMembers = 2_000
	MaxRules       = 50_000
	MaxRuleTargets = 16
	MaxAccounts    = 200_000
)

// DefaultCatchUpLimit bounds the turns a CATCH_UP member gets back.
const DefaultCatchUpLimit = 3

// DefaultStickyWindow is how long an open assignment keeps a person's new
// leads with the same rep.
const DefaultStickyWindow = 30 * 24 * time.Hour

// UnmarshalText accepts any case ("round_robin").
func (s *Strategy) UnmarshalText(b []byte) error { return upperText(s, b) }

// Config is a workspace's routing document. The YAML and JSON field names are
// those of proto/leadrouter/v1/config.proto.
type Config struct {
	Reps     []Rep     `json:"reps,omitempty" yaml:"reps,omitempty"`
	Pools    []Pool    `json:"pools,omitempty" yaml:"pools,omitempty"`
	Rules    []Rule    `json:"rules,omitempty" yaml:"rules,omitempty"`
	Accounts []Account `json:"accounts,omitempty" yaml:"accounts,omitempty"`
	// Intakes are the webhook endpoints of form tools (intake.go).
	Intakes []Intake `json:"intakes,omitempty" yaml:"intakes,omitempty"`
	// Sinks are where the workspace's events are delivered (sink.go).
	Sinks    []Sink   `json:"sinks,omitempty" yaml:"sinks,omitempty"`
	Settings Settings `json:"settings,omitzero" yaml:"settings,omitempty"`
}

// Settings are workspace-wide policies; see config.proto.
type Settings struct {
	MaxQueueAge  Duration  `json:"max_queue_age,omitempty" yaml:"max_queue_age,omitempty"`
	StickyWindow *Duration `json:"sticky_window,omitempty" yaml:"sticky_window,omitempty"`
	EventsMaxLen int32     `json:"events_max_len,omitempty" yaml:"events_max_len,omitempty"`
	EventsMaxAge Duration  `json:"events_max_age,omitempty" yaml:"events_max_age,omitempty"`
	// PresenceFollowsConnection sets reps without a desktop stream OFFLINE
	// after PresenceGrace (default 60s).
	PresenceFollowsConnection bool     `json:"presence_follows_connection,omitempty" yaml:"presence_follows_connection,omitempty"`
	PresenceGrace             Duration `json:"presence_grace,omitempty" yaml:"presence_grace,omitempty"`
	// RetainClosed is how long a CLOSED or UNROUTABLE lead's record is
	// kept (default DefaultRetainClosed); then it is removed, and its lead
	// id may be used again.
	RetainClosed Duration `json:"retain_closed,omitempty" yaml:"retain_closed,omitempty"`
	// MaxStoredLeads is how many records the workspace may hold (default
	// DefaultMaxStoredLeads); past it AssignLead answers RESOURCE_EXHAUSTED.
	MaxStoredLeads int64 `json:"max_stored_leads,omitempty" yaml:"max_stored_leads,omitempty"`
	// StickyIgnorePlus makes a plus-address the same person as its base
	// address (jane+demo@acme.com is jane@acme.com) for sticky routing and
	// the person index.
	StickyIgnorePlus bool `json:"sticky_ignore_plus,omitempty" yaml:"sticky_ignore_plus,omitempty"`
}

// Retention and quota defaults and bounds.
const (
	DefaultRetainClosed   = 30 * 24 * time.Hour
	MinRetainClosed       = time.Minute
	MaxRetainClosed       = 10 * 365 * 24 * time.Hour
	DefaultMaxStoredLeads = 1_000_000
)

// Retain returns how long a closed or unroutable lead's record is kept.
func (s Settings) Retain() time.Duration {
	if s.RetainClosed == 0 {
		return DefaultRetainClosed
	}
	return time.Duration(s.RetainClosed)
}

// StoredQuota returns how many records the workspace may hold.
func (s Settings) StoredQuota() int64 {
	if s.MaxStoredLeads == 0 {
		return DefaultMaxStoredLeads
	}
	return s.MaxStoredLeads
}

// DefaultPresenceGrace is how long a rep may be without a desktop stream
// under presence_follows_connection.
const DefaultPresenceGrace = 60 * time.Second

// Grace returns the presence grace period; zero when presence does not
// follow the connection.
func (s Settings) Grace() time.Duration {
	switch {
	case !s.PresenceFollowsConnection:
		return 0
	case s.PresenceGrace > 0:
		return time.Duration(s.PresenceGrace)
	}
	return DefaultPresenceGrace
}

// Event retention defaults.
const (
	DefaultEventsMaxLen = 100_000
	DefaultEventsMaxAge = 7 * 24 * time.Hour
)

// Retention returns how many events, and how old, the history keeps.
func (s Settings) Retention() (int64, time.Duration) {
	n, age := int64(s.EventsMaxLen), time.Duration(s.EventsMaxAge)
	if n == 0 {
		n = DefaultEventsMaxLen
	}
	if age == 0 {
		age = DefaultEventsMaxAge
	}
	return n, age
}

// Sticky returns the sticky-dedupe window; zero when disabled.
func (s Settings) Sticky() time.Duration {
	switch {
	case s.StickyWindow == nil:
		return DefaultStickyWindow
	case *s.StickyWindow < 0:
		return 0
	}
	return time.Duration(*s.StickyWindow)
}

// Account maps a company domain to its owner (lead-to-account matching).
type Account struct {
	Domain         string `json:"domain" yaml:"domain"`
	OwnerRepID     string `json:"owner_rep_id" yaml:"owner_rep_id"`
	FallbackPoolID string `json:"fallback_pool_id,omitempty" yaml:"fallback_pool_id,omitempty"`
}

// Duration is a time.Duration written as text: "90s", "30m", "4h", and also
// whole days, "30d".
type Duration time.Duration

// UnmarshalText parses Go duration syntax plus a "d" (24h) suffix.
func (d *Duration) UnmarshalText(b []byte) error {
	s := strings.TrimSpace(string(b))
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil {
			return fmt.Errorf("duration %q: %w", s, err)
		}
		*d = Duration(time.Duration(n) * 24 * time.Hour)
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes the duration in Go syntax.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// Rep is a person who can take leads.
type Rep struct {
	ID            string            `json:"id" yaml:"id"`
	Name          string            `json:"name,omitempty" yaml:"name,omitempty"`
	Email         string            `json:"email,omitempty" yaml:"email,omitempty"`
	Timezone      string            `json:"timezone,omitempty" yaml:"timezone,omitempty"`
	Attributes    map[string]string `json:"attributes,omitempty" yaml:"attributes,omitempty"`
	InitialStatus RepStatus         `json:"initial_status,omitempty" yaml:"initial_status,omitempty"`
	MaxOpen       int32             `json:"max_open,omitempty" yaml:"max_open,omitempty"`
	DailyCap      int32             `json:"daily_cap,omitempty" yaml:"daily_cap,omitempty"`
	WorkingHours  *WorkingHours     `json:"working_hours,omitempty" yaml:"working_hours,omitempty"`
	OutOfOffice   []DateRange       `json:"out_of_office,omitempty" yaml:"out_of_office,omitempty"`
}

// WorkingHours is a weekly schedule of "HH:MM-HH:MM" intervals in the rep's
// time zone; "+1" marks an interval ending the next day.
type WorkingHours struct {
	Monday    []string `json:"monday,omitempty" yaml:"monday,omitempty"`
	Tuesday   []string `json:"tuesday,omitempty" yaml:"tuesday,omitempty"`
	Wednesday []string `json:"wednesday,omitempty" yaml:"wednesday,omitempty"`
	Thursday  []string `json:"thursday,omitempty" yaml:"thursday,omitempty"`
	Friday    []string `json:"friday,omitempty" yaml:"friday,omitempty"`
	Saturday  []string `json:"saturday,omitempty" yaml:"saturday,omitempty"`
	Sunday    []string `json:"sunday,omitempty" yaml:"sunday,omitempty"`
}

// Days returns the intervals of each weekday, Monday first.
func (w *WorkingHours) Days() [7][]string {
	return [7][]string{w.Monday, w.Tuesday, w.Wednesday, w.Thursday, w.Friday, w.Saturday, w.Sunday}
}

// DateRange is an inclusive range of dates, "YYYY-MM-DD".
type DateRange struct {
	From string `json:"from" yaml:"from"`
	To   string `json:"to" yaml:"to"`
}

// Pool is a set of reps sharing one strategy.
type Pool struct {
	ID       string   `json:"id" yaml:"id"`
	Name     string   `json:"name,omitempty" yaml:"name,omitempty"`
	Strategy Strategy `json:"strategy,omitempty" yaml:"strategy,omitempty"`
	Members  []Member `json:"members" yaml:"members"`
	// AbsencePolicy applies to the round-robin strategies.
	AbsencePolicy AbsencePolicy `json:"absence_policy,omitempty" yaml:"absence_policy,omitempty"`
	CatchUpLimit  int32         `json:"catch_up_limit,omitempty" yaml:"catch_up_limit,omitempty"`
	// The offer and first-contact policies; see config.proto.
	AcceptWithin       *Duration    `json:"accept_within,omitempty" yaml:"accept_within,omitempty"`
	RejectCooldown     Duration     `json:"reject_cooldown,omitempty" yaml:"reject_cooldown,omitempty"`
	MaxMissedOffers    *int32       `json:"max_missed_offers,omitempty" yaml:"max_missed_offers,omitempty"`
	MaxOffers          int32        `json:"max_offers,omitempty" yaml:"max_offers,omitempty"`
	FirstContactWithin Duration     `json:"first_contact_within,omitempty" yaml:"first_contact_within,omitempty"`
	WarnAt             Duration     `json:"warn_at,omitempty" yaml:"warn_at,omitempty"`
	OnBreach           BreachPolicy `json:"on_breach,omitempty" yaml:"on_breach,omitempty"`
}

// Accept returns how long a rep has to accept an offer; 0: no offers.
func (p *Pool) Accept() time.Duration {
	if p.AcceptWithin == nil {
		return DefaultAcceptWithin
	}
	return time.Duration(*p.AcceptWithin)
}

// MissedOffersLimit returns the consecutive timeouts that set a rep AWAY;
// 0: never.
func (p *Pool) MissedOffersLimit() int32 {
	if p.MaxMissedOffers == nil {
		return DefaultMaxMissedOffers
	}
	return *p.MaxMissedOffers
}

// BreachPolicy is what a pool does when a first-contact SLA runs out.
type BreachPolicy string

// Breach policies. Notify is the default.
const (
	Notify   BreachPolicy = "NOTIFY"
	Reassign BreachPolicy = "REASSIGN"
)

// UnmarshalText accepts any case ("reassign").
func (b *BreachPolicy) UnmarshalText(t []byte) error { return upperText(b, t) }

// Offer defaults.
const (
	DefaultAcceptWithin    = 120 * time.Second
	DefaultMaxMissedOffers = 3
	DefaultMaxOffers       = 5
)

// Member names one rep of a pool; its position in Pool.Members is its place
// in the rotation.
type Member struct {
	RepID    string `json:"rep_id" yaml:"rep_id"`
	Weight   *int32 `json:"weight,omitempty" yaml:"weight,omitempty"`
	DailyCap int32  `json:"daily_cap,omitempty" yaml:"daily_cap,omitempty"`
}

// EffectiveWeight is the member's weight, 1 when unset.
func (m Member) EffectiveWeight() int32 {
	if m.Weight == nil {
		return 1
	}
	return *m.Weight
}

// Rule is a territory: criteria and the pools that serve it, in order.
type Rule struct {
	ID      string   `json:"id" yaml:"id"`
	Name    string   `json:"name,omitempty" yaml:"name,omitempty"`
	Match   Match    `json:"match,omitzero" yaml:"match,omitempty"`
	Targets []Target `json:"targets" yaml:"targets"`
}

// Target names one pool of a rule.
type Target struct {
	PoolID            string   `json:"pool_id" yaml:"pool_id"`
	SkipIfUnavailable bool     `json:"skip_if_unavailable,omitempty" yaml:"skip_if_unavailable,omitempty"`
	Wait              Duration `json:"wait,omitempty" yaml:"wait,omitempty"`
}

// Match holds a rule's criteria; see config.proto for the semantics.
type Match struct {
	Countries      []string          `json:"countries,omitempty" yaml:"countries,omitempty"`
	Regions        []string          `json:"regions,omitempty" yaml:"regions,omitempty"`
	PostalPrefixes []string          `json:"postal_prefixes,omitempty" yaml:"postal_prefixes,omitempty"`
	Industries     []string          `json:"industries,omitempty" yaml:"industries,omitempty"`
	EmployeeCount  *IntRange         `json:"employee_count,omitempty" yaml:"employee_count,omitempty"`
	Sources        []string          `json:"sources,omitempty" yaml:"sources,omitempty"`
	Products       []string          `json:"products,omitempty" yaml:"products,omitempty"`
	Languages      []string          `json:"languages,omitempty" yaml:"languages,omitempty"`
	Score          *IntRange         `json:"score,omitempty" yaml:"score,omitempty"`
	Attributes     map[string]string `json:"attributes,omitempty" yaml:"attributes,omitempty"`
}

// IsZero reports whether the match has no criterion: it accepts every lead.
func (m Match) IsZero() bool {
	return len(m.Countries) == 0 && len(m.Regions) == 0 && len(m.PostalPrefixes) == 0 &&
		len(m.Industries) == 0 && m.EmployeeCount == nil && len(m.Sources) == 0 &&
		len(m.Products) == 0 && len(m.Languages) == 0 && m.Score == nil && len(m.Attributes) == 0
}

// IntRange is an inclusive range; a nil bound is open.
type IntRange struct {
	Min *int32 `json:"min,omitempty" yaml:"min,omitempty"`
	Max *int32 `json:"max,omitempty" yaml:"max,omitempty"`
}

// Contains reports whether v lies in the range.
func (r IntRange) Contains(v int32) bool {
	return (r.Min == nil || v >= *r.Min) && (r.Max == nil || v <= *r.Max)
}

func (r IntRange) String() string {
	lo, hi := "", ""
	if r.Min != nil {
		lo = fmt.Sprint(*r.Min)
	}
	if r.Max != nil {
		hi = fmt.Sprint(*r.Max)
	}
	return "[" + lo + ".." + hi + "]"
}

// ParseConfigYAML reads a routing config written by a human. Unknown fields
// are errors, so a typo never silently disables a criterion. The result is
// not validated; Engine.ApplyConfig does that.
func ParseConfigYAML(r io.Reader) (*Config, error) {
	dec := yaml.NewDecoder(r)
	dec.KnownFields(true)
	var cfg Config
	if err := dec.Decode(&cfg); err != nil {
		if errors.Is(err, io.EOF) {
			return &cfg, nil
		}
		return nil, fmt.Errorf("routing config: %w", err)
	}
	return &cfg, nil
}

// YAML writes the config in the form ParseConfigYAML reads.
func (c *Config) YAML() ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(c); err != nil {
		return nil, err
	}
	return buf.Bytes(), enc.Close()
}

// Validate checks the whole config and reports every problem with its path
// (e.g. `rules[3].targets[0].pool_id: unknown pool "emea-smb"`). It fills in
// defaults (strategy, initial status, time zone) in place.
func (c *Config) Validate() error {
	var v violations
	for _, lim := range []struct {
		field  string
		n, max int
	}{
		{"reps", len(c.Reps), MaxReps}, {"pools", len(c.Pools), MaxPools},
		{"rules", len(c.Rules), MaxRules}, {"accounts", len(c.Accounts), MaxAccounts},
	} {
		if lim.n > lim.max {
			v.add(lim.field, "%d entries, at most %d allowed", lim.n, lim.max)
		}
	}
	if len(v) > 0 {
		return v.err()
	}
	reps := make(map[string]bool, len(c.Reps))
	for i := range c.Reps {
		r := &c.Reps[i]
		p := fmt.Sprintf("reps[%d]", i)
		checkID(&v, p+".id", r.ID, reps, "rep")
		if r.Email != "" {
			if err := checkEmail(r.Email); err != nil {
				v.add(p+".email", "not a valid email address (%v)", err)
			}
		}
		loc := time.UTC
		if r.Timezone == "" {
			r.Timezone = "UTC"
		} else if l, err := time.LoadLocation(r.Timezone); err != nil || r.Timezone == "Local" {
			// "Local" would make the rep's hours depend on the server.
			v.add(p+".timezone", "unknown time zone %q (want an IANA name such as Europe/Berlin)", r.Timezone)
		} else {
			loc = l
		}
		if r.MaxOpen < 0 {
			v.add(p+".max_open", "%d is negative (0 means no limit)", r.MaxOpen)
		}
		if r.DailyCap < 0 {
			v.add(p+".daily_cap", "%d is negative (0 means no limit)", r.DailyCap)
		}
		parseSchedule(&v, p, r, loc)
		if r.InitialStatus == "" {
			r.InitialStatus = StatusAvailable
		} else if !r.InitialStatus.Valid() {
			v.add(p+".initial_status", "%q is not one of AVAILABLE, AWAY, OFFLINE", r.InitialStatus)
		}
		checkAttributes(&v, p+".attributes", r.Attributes)
	}
	pools := make(map[string]bool, len(c.Pools))
	for i := range c.Pools {
		pl := &c.Pools[i]
		p := fmt.Sprintf("pools[%d]", i)
		checkID(&v, p+".id", pl.ID, pools, "pool")
		if pl.Strategy == "" {
			pl.Strategy = StrategyRoundRobin
		} else if !pl.Strategy.valid() {
			v.add(p+".strategy", "%q is not one of ROUND_ROBIN, WEIGHTED_ROUND_ROBIN, LEAST_LOADED, LONGEST_IDLE", pl.Strategy)
		}
		switch pl.AbsencePolicy {
		case "":
			pl.AbsencePolicy = KeepPosition
		case KeepPosition, CatchUp:
		default:
			v.add(p+".absence_policy", "%q is not one of KEEP_POSITION, CATCH_UP", pl.AbsencePolicy)
		}
		switch {
		case pl.CatchUpLimit < 0:
			v.add(p+".catch_up_limit", "%d is negative", pl.CatchUpLimit)
		case pl.CatchUpLimit == 0 && pl.AbsencePolicy == CatchUp:
			pl.CatchUpLimit = DefaultCatchUpLimit
		}
		checkPoolPolicies(&v, p, pl)
		switch {
		case len(pl.Members) == 0:
			v.add(p+".members", "a pool needs at least one member")
		case len(pl.Members) > MaxPoolMembers:
			v.add(p+".members", "%d members, at most %d allowed", len(pl.Members), MaxPoolMembers)
		}
		seen := make(map[string]bool, len(pl.Members))
		for j, m := range pl.Members {
			mp := fmt.Sprintf("%s.members[%d].rep_id", p, j)
			switch {
			case m.RepID == "":
				v.add(mp, "required")
			case !reps[m.RepID]:
				v.add(mp, "unknown rep %q", m.RepID)
			case seen[m.RepID]:
				v.add(mp, "rep %q is already a member of this pool", m.RepID)
			}
			seen[m.RepID] = true
			if m.Weight != nil && *m.Weight < 1 {
				v.add(fmt.Sprintf("%s.members[%d].weight", p, j), "%d: a weight must be at least 1", *m.Weight)
			}
			if m.DailyCap < 0 {
				v.add(fmt.Sprintf("%s.members[%d].daily_cap", p, j), "%d is negative (0 means no limit)", m.DailyCap)
			}
		}
	}
	rules := make(map[string]bool, len(c.Rules))
	catchAll := -1
	for i := range c.Rules {
		r := &c.Rules[i]
		p := fmt.Sprintf("rules[%d]", i)
		checkID(&v, p+".id", r.ID, rules, "rule")
		if catchAll >= 0 {
			v.add(p, "unreachable: rules[%d] (%q) before it matches every lead", catchAll, c.Rules[catchAll].ID)
		}
		if r.Match.IsZero() && catchAll < 0 {
			catchAll = i
		}
		checkMatch(&v, p+".match", &r.Match)
		switch {
		case len(r.Targets) == 0:
			v.add(p+".targets", "a rule needs at least one target")
		case len(r.Targets) > MaxRuleTargets:
			v.add(p+".targets", "%d targets, at most %d allowed", len(r.Targets), MaxRuleTargets)
		}
		seen := make(map[string]bool, len(r.Targets))
		for j, t := range r.Targets {
			tp := fmt.Sprintf("%s.targets[%d].pool_id", p, j)
			switch {
			case t.PoolID == "":
				v.add(tp, "required")
			case !pools[t.PoolID]:
				v.add(tp, "unknown pool %q", t.PoolID)
			case seen[t.PoolID]:
				v.add(tp, "pool %q is already a target of this rule", t.PoolID)
			}
			seen[t.PoolID] = true
			switch {
			case t.Wait < 0:
				v.add(fmt.Sprintf("%s.targets[%d].wait", p, j), "%s is negative", time.Duration(t.Wait))
			case t.Wait > 0 && t.SkipIfUnavailable:
				v.add(fmt.Sprintf("%s.targets[%d]", p, j), "wait and skip_if_unavailable contradict each other")
			}
		}
	}
	domains := make(map[string]bool, len(c.Accounts))
	for i := range c.Accounts {
		a := &c.Accounts[i]
		p := fmt.Sprintf("accounts[%d]", i)
		a.Domain = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(a.Domain), "."))
		switch {
		case a.Domain == "":
			v.add(p+".domain", "required")
		case !validDomain(a.Domain):
			v.add(p+".domain", "%q is not a domain name", a.Domain)
		case domains[a.Domain]:
			v.add(p+".domain", "duplicate account %q", a.Domain)
		}
		domains[a.Domain] = true
		switch {
		case a.OwnerRepID == "":
			v.add(p+".owner_rep_id", "required")
		case !reps[a.OwnerRepID]:
			v.add(p+".owner_rep_id", "unknown owner: no rep %q", a.OwnerRepID)
		}
		if a.FallbackPoolID != "" && !pools[a.FallbackPoolID] {
			v.add(p+".fallback_pool_id", "unknown pool %q", a.FallbackPoolID)
		}
	}
	if c.Settings.MaxQueueAge < 0 {
		v.add("settings.max_queue_age", "%s is negative", time.Duration(c.Settings.MaxQueueAge))
	}
	if c.Settings.EventsMaxLen < 0 {
		v.add("settings.events_max_len", "%d is negative", c.Settings.EventsMaxLen)
	}
	if c.Settings.PresenceGrace < 0 {
		v.add("settings.presence_grace", "%s is negative", time.Duration(c.Settings.PresenceGrace))
	}
	if c.Settings.EventsMaxAge < 0 {
		v.add("settings.events_max_age", "%s is negative", time.Duration(c.Settings.EventsMaxAge))
	}
	if r := time.Duration(c.Settings.RetainClosed); r != 0 && (r < MinRetainClosed || r > MaxRetainClosed) {
		v.add("settings.retain_closed", "%s is outside 1m to 10 years", r)
	}
	if c.Settings.MaxStoredLeads < 0 {
		v.add("settings.max_stored_leads", "%d is negative", c.Settings.MaxStoredLeads)
	}
	checkIntakes(&v, c.Intakes)
	checkSinks(&v, c)
	return v.err()
}

// checkPoolPolicies validates a pool's offer and SLA policies and fills in
// their defaults.
func checkPoolPolicies(v *violations, p string, pl *Pool) {
	for _, d := range []struct {
		field string
		val   Duration
	}{{"reject_cooldown", pl.RejectCooldown}, {"first_contact_within", pl.FirstContactWithin}, {"warn_at", pl.WarnAt}} {
		if d.val < 0 {
			v.add(p+"."+d.field, "%s is negative", time.Duration(d.val))
		}
	}
	if pl.AcceptWithin != nil && (*pl.AcceptWithin < 0 || (*pl.AcceptWithin > 0 && time.Duration(*pl.AcceptWithin) < time.Second)) {
		v.add(p+".accept_within", "%s: want 0 (no offers) or at least 1s", time.Duration(*pl.AcceptWithin))
	}
	if pl.MaxMissedOffers != nil && *pl.MaxMissedOffers < 0 {
		v.add(p+".max_missed_offers", "%d is negative", *pl.MaxMissedOffers)
	}
	switch {
	case pl.MaxOffers < 0:
		v.add(p+".max_offers", "%d is negative", pl.MaxOffers)
	case pl.MaxOffers == 0:
		pl.MaxOffers = DefaultMaxOffers
	}
	if pl.WarnAt > 0 && (pl.FirstContactWithin == 0 || pl.WarnAt >= pl.FirstContactWithin) {
		v.add(p+".warn_at", "%s must be shorter than first_contact_within", time.Duration(pl.WarnAt))
	}
	switch pl.OnBreach {
	case "":
		pl.OnBreach = Notify
	case Notify, Reassign:
	default:
		v.add(p+".on_breach", "%q is not one of NOTIFY, REASSIGN", pl.OnBreach)
	}
}

// validDomain accepts host names such as "acme.com" and "eu.acme.co.uk".
func validDomain(d string) bool {
	if len(d) > 253 || !strings.Contains(d, ".") {
		return false
	}
	for _, label := range strings.Split(d, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

func checkID(v *violations, path, id string, seen map[string]bool, kind string) {
	switch {
	case id == "":
		v.add(path, "required")
	case len(id) > MaxIDBytes:
		v.add(path, "%d bytes, at most %d allowed", len(id), MaxIDBytes)
	case !isIdent(id):
		v.add(path, "%q may contain only letters, digits and - _ . @ :", id)
	case seen[id]:
		v.add(path, "duplicate %s id %q", kind, id)
	}
	seen[id] = true
}

func checkMatch(v *violations, p string, m *Match) {
	for j, c := range m.Countries {
		code, ok := canonicalCountry(c)
		if !ok {
			v.add(fmt.Sprintf("%s.countries[%d]", p, j), "%q is not an ISO 3166-1 alpha-2 country code", c)
		}
		m.Countries[j] = code
	}
	for j, l := range m.Languages {
		tag, err := canonicalLanguage(l)
		if err != nil {
			v.add(fmt.Sprintf("%s.languages[%d]", p, j), "%q is not a BCP 47 language tag", l)
		}
		m.Languages[j] = tag
	}
	for _, f := range []struct {
		name string
		list []string
	}{
		{"regions", m.Regions}, {"postal_prefixes", m.PostalPrefixes}, {"industries", m.Industries},
		{"sources", m.Sources}, {"products", m.Products},
	} {
		for j, s := range f.list {
			if strings.TrimSpace(s) == "" {
				v.add(fmt.Sprintf("%s.%s[%d]", p, f.name, j), "empty value")
			}
		}
	}
	checkRange(v, p+".employee_count", m.EmployeeCount, 0, maxEmployeeCount)
	checkRange(v, p+".score", m.Score, 0, maxScore)
	checkAttributes(v, p+".attributes", m.Attributes)
}

func checkRange(v *violations, p string, r *IntRange, lo, hi int32) {
	if r == nil {
		return
	}
	if r.Min == nil && r.Max == nil {
		v.add(p, "set min, max or both")
	}
	for _, b := range []struct {
		name string
		val  *int32
	}{{"min", r.Min}, {"max", r.Max}} {
		if b.val != nil && (*b.val < lo || *b.val > hi) {
			v.add(p+"."+b.name, "%d is outside %d-%d", *b.val, lo, hi)
		}
	}
	if r.Min != nil && r.Max != nil && *r.Min > *r.Max {
		v.add(p, "min %d is greater than max %d", *r.Min, *r.Max)
	}
}
