package engine

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// maxRuleTrace bounds how many non-matching rules a trace lists; the rest
// are summarized in one entry.
const maxRuleTrace = 32

// compiledConfig is a validated config prepared for matching: lower-cased
// sets and lookups by id. It is immutable once built and shared by
// concurrent decisions.
type compiledConfig struct {
	workspace   string
	id          string
	version     int64
	personKey   string // StoredConfig.PersonKey
	cfg         *Config
	rules       []compiledRule
	reps        map[string]*Rep
	pools       map[string]*Pool
	repPools    map[string][]string // rep id -> pool ids, in config order
	rankedPools map[string][]Pool   // rep id -> its least-loaded and longest-idle pools
	schedules   map[string]schedule // rep id -> calendar
	zones       []*time.Location    // every rep's time zone, once each, and UTC
	local       atomic.Pointer[localCache]
	loadedAt    time.Time           // when freshConfig read it from the store
	shifts      shiftFiler          // this replica's filing of reps by their calendars
	accounts    map[string]*Account // company domain -> account
	index       *ruleIndex
}

type compiledRule struct {
	index          int
	id             string
	targets        []Target
	countries      set
	regions        set
	postalPrefixes []string
	industries     set
	employees      *IntRange
	sources        set
	products       set
	languages      []string
	score          *IntRange
	attributes     map[string]string

	// Trace texts of the lists above, formatted once at compile time:
	// a miss is reported for most rules of most decisions.
	postalText, languagesText, employeesText, scoreText string
	// description is describe's text, the trace of a match.
	description string
}

// set is a case-insensitive string set that remembers its spelling for
// traces.
type set struct {
	m    map[string]struct{}
	list []string
	text string // list as traces print it, "[a b]"
}

func newSet(values []string) set {
	s := set{list: values, text: traceList(values)}
	if len(values) > 0 {
		s.m = make(map[string]struct{}, len(values))
		for _, v := range values {
			s.m[strings.ToLower(strings.TrimSpace(v))] = struct{}{}
		}
	}
	return s
}

func (s set) active() bool { return s.m != nil }

func (s set) has(v string) bool {
	_, ok := s.m[strings.ToLower(v)]
	return ok
}

// compile prepares a validated config; sc gives its identity (nil in unit
// tests of matching).
func compile(cfg *Config, sc *StoredConfig) *compiledConfig {
	cc := &compiledConfig{
		cfg:         cfg,
		reps:        make(map[string]*Rep, len(cfg.Reps)),
		pools:       make(map[string]*Pool, len(cfg.Pools)),
		repPools:    make(map[string][]string, len(cfg.Reps)),
		rankedPools: make(map[string][]Pool),
		schedules:   make(map[string]schedule, len(cfg.Reps)),
		accounts:    make(map[string]*Account, len(cfg.Accounts)),
	}
	if sc != nil {
		cc.id, cc.version, cc.personKey = sc.ID, sc.Version, sc.PersonKey
	}
	seen := map[string]bool{"UTC": true}
	cc.zones = []*time.Location{time.UTC}
	for i := range cfg.Reps {
		r := &cfg.Reps[i]
		cc.reps[r.ID] = r
		loc, err := time.LoadLocation(r.Timezone)
		if err != nil {
			loc = time.UTC
		}
		if !seen[loc.String()] {
			seen[loc.String()] = true
			cc.zones = append(cc.zones, loc)
		}
		var v violations
		cc.schedules[r.ID] = parseSchedule(&v, "", r, loc)
	}
	for i := range cfg.Pools {
		p := &cfg.Pools[i]
		cc.pools[p.ID] = p
		for _, m := range p.Members {
			cc.repPools[m.RepID] = append(cc.repPools[m.RepID], p.ID)
			if p.Strategy == StrategyLeastLoaded || p.Strategy == StrategyLongestIdle {
				cc.rankedPools[m.RepID] = append(cc.rankedPools[m.RepID], Pool{ID: p.ID, Strategy: p.Strategy})
			}
		}
	}
	for i := range cfg.Accounts {
		cc.accounts[cfg.Accounts[i].Domain] = &cfg.Accounts[i]
	}
	for ri, r := range cfg.Rules {
		cr := compiledRule{
			index:      ri,
			targets:    r.Targets,
			id:         r.ID,
			countries:  newSet(r.Match.Countries),
			regions:    newSet(r.Match.Regions),
			industries: newSet(r.Match.Industries),
			sources:    newSet(r.Match.Sources),
			products:   newSet(r.Match.Products),
			employees:  r.Match.EmployeeCount,
			score:      r.Match.Score,
			attributes: r.Match.Attributes,
		}
		for _, p := range r.Match.PostalPrefixes {
			cr.postalPrefixes = append(cr.postalPrefixes, normalizePostal(p))
		}
		for _, l := range r.Match.Languages {
			cr.languages = append(cr.languages, strings.ToLower(l))
		}
		cr.postalText, cr.languagesText = traceList(cr.postalPrefixes), traceList(cr.languages)
		if cr.employees != nil {
			cr.employeesText = cr.employees.String()
		}
		if cr.score != nil {
			cr.scoreText = cr.score.String()
		}
		cr.description = cr.describe()
		cc.rules = append(cc.rules, cr)
	}
	cc.index = buildIndex(cc.rules)
	return cc
}

func normalizePostal(s string) string {
	return strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(s), " ", ""))
}

// match returns the first rule accepting the lead (nil when none does) and
// the evaluations that explain it. A config of up to maxRuleTrace rules is
// scanned, and every rule up to the match is listed; a larger one is
// searched through the territory index, and the rules it ruled out by
// country, region or postal code are counted in one entry.
func (cc *compiledConfig) match(l *Lead) (*compiledRule, []RuleEvaluation) {
	if len(cc.rules) <= maxRuleTrace {
		return cc.scan(l)
	}
	return cc.search(l)
}

// scan evaluates every rule in order.
func (cc *compiledConfig) scan(l *Lead) (*compiledRule, []RuleEvaluation) {
	var evals []RuleEvaluation
	for i := range cc.rules {
		r := &cc.rules[i]
		if miss := r.miss(l); miss != "" {
			evals = append(evals, RuleEvaluation{RuleID: r.id, Detail: miss})
			continue
		}
		return r, append(evals, RuleEvaluation{RuleID: r.id, Matched: true, Detail: r.description})
	}
	return nil, evals
}

// search evaluates the index's candidates in rule order. The trace lists
// the first maxRuleTrace candidates that missed, then counts the rest, and
// starts with how many rules the index ruled out.
func (cc *compiledConfig) search(l *Lead) (*compiledRule, []RuleEvaluation) {
	var buf [32]int
	var evals []RuleEvaluation
	evaluated := 0
	finish := func(upTo int, last *RuleEvaluation) []RuleEvaluation {
		if more := evaluated - len(evals); more > 0 {
			evals = append(evals, RuleEvaluation{RuleID: "...", Detail: fmt.Sprintf("%d more rules did not match", more)})
		}
		if out := upTo - evaluated; out > 0 {
			evals = append([]RuleEvaluation{{RuleID: "(territories)",
				Detail: fmt.Sprintf("%d rules ruled out by country, region or postal code", out)}}, evals...)
		}
		if last != nil {
			evals = append(evals, *last)
		}
		return evals
	}
	for _, i := range cc.index.candidates(l, buf[:0]) {
		r := &cc.rules[i]
		miss := r.miss(l)
		if miss == "" {
			return r, finish(i, &RuleEvaluation{RuleID: r.id, Matched: true, Detail: r.description})
		}
		if evaluated++; len(evals) < maxRuleTrace {
			evals = append(evals, RuleEvaluation{RuleID: r.id, Detail: miss})
		}
	}
	return nil, finish(len(cc.rules), nil)
}

// miss returns why the rule rejects the lead: the first criterion that
// fails, or "" when the rule matches.
func (r *compiledRule) miss(l *Lead) string {
	// Concatenation, not fmt: this runs for every rule a lead passes by.
	if r.countries.active() && !r.countries.has(l.Country) {
		return "country " + orNone(l.Country) + " not in " + r.countries.text
	}
	if r.regions.active() && !r.regions.has(l.Region) {
		return "region " + orNone(l.Region) + " not in " + r.regions.text
	}
	if len(r.postalPrefixes) > 0 && !hasAnyPrefix(normalizePostal(l.PostalCode), r.postalPrefixes) {
		return "postal code " + orNone(l.PostalCode) + " has none of the prefixes " + r.postalText
	}
	if r.industries.active() && !r.industries.has(l.Industry) {
		return "industry " + orNone(l.Industry) + " not in " + r.industries.text
	}
	if r.employees != nil && (l.EmployeeCount == 0 || !r.employees.Contains(l.EmployeeCount)) {
		if l.EmployeeCount == 0 {
			return "employee count unknown, want " + r.employeesText
		}
		return "employee count " + strconv.FormatInt(int64(l.EmployeeCount), 10) + " not in " + r.employeesText
	}
	if r.sources.active() && !r.sources.has(l.Source) {
		return "source " + orNone(l.Source) + " not in " + r.sources.text
	}
	if r.products.active() && !r.products.has(l.Product) {
		return "product " + orNone(l.Product) + " not in " + r.products.text
	}
	if len(r.languages) > 0 && !languageMatches(strings.ToLower(l.Language), r.languages) {
		return "language " + orNone(l.Language) + " not in " + r.languagesText
	}
	if r.score != nil && (l.Score == nil || !r.score.Contains(*l.Score)) {
		if l.Score == nil {
			return "score unknown, want " + r.scoreText
		}
		return "score " + strconv.FormatInt(int64(*l.Score), 10) + " not in " + r.scoreText
	}
	for k, want := range r.attributes {
		if got, ok := l.Attributes[k]; !ok || got != want {
			return "attribute " + clip(k) + " is " + strconv.Quote(clip(got)) + ", want " + strconv.Quote(clip(want))
		}
	}
	return ""
}

// A rule's trace text names at most traceListItems values of a list and at
// most traceTextBytes of a value, so that a rule trace, and the record
// holding it, has a bound whatever the config's lists (engine.MaxRecordBytes).
const (
	traceListItems = 10
	traceTextBytes = 128
)

// traceList prints values as "[a b c]", the first traceListItems of them
// and a count of the rest.
func traceList(values []string) string {
	if len(values) <= traceListItems {
		return "[" + strings.Join(clipAll(values), " ") + "]"
	}
	return "[" + strings.Join(clipAll(values[:traceListItems]), " ") + " … " +
		strconv.Itoa(len(values)-traceListItems) + " more]"
}

func clipAll(values []string) []string {
	out := make([]string, len(values))
	for i, v := range values {
		out[i] = clip(v)
	}
	return out
}

// clip cuts s to traceTextBytes (at a rune boundary), marking the cut.
func clip(s string) string {
	if len(s) <= traceTextBytes {
		return s
	}
	cut := traceTextBytes
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// describe says what the rule requires, for the trace of a match.
func (r *compiledRule) describe() string {
	var parts []string
	add := func(name string, active bool, v any) {
		if active {
			parts = append(parts, fmt.Sprintf("%s in %v", name, v))
		}
	}
	add("country", r.countries.active(), r.countries.text)
	add("region", r.regions.active(), r.regions.text)
	add("postal prefix", len(r.postalPrefixes) > 0, r.postalText)
	add("industry", r.industries.active(), r.industries.text)
	add("employee count", r.employees != nil, r.employees)
	add("source", r.sources.active(), r.sources.text)
	add("product", r.products.active(), r.products.text)
	add("language", len(r.languages) > 0, r.languagesText)
	add("score", r.score != nil, r.score)
	if len(r.attributes) > 0 {
		keys := make([]string, 0, len(r.attributes))
		for k, v := range r.attributes {
			keys = append(keys, clip(k)+":"+clip(v))
		}
		sort.Strings(keys)
		add("attributes", true, "map"+traceList(keys))
	}
	if len(parts) == 0 {
		return "matches every lead (default rule)"
	}
	return "matched: " + strings.Join(parts, ", ")
}

func hasAnyPrefix(s string, prefixes []string) bool {
	if s == "" {
		return false
	}
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// languageMatches accepts a lead language equal to a rule language or a
// more specific tag of it ("de" accepts "de-at").
func languageMatches(lead string, langs []string) bool {
	if lead == "" {
		return false
	}
	for _, l := range langs {
		if lead == l || strings.HasPrefix(lead, l+"-") {
			return true
		}
	}
	return false
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// localCache holds the local times of one second.
type localCache struct {
	second int64
	times  LocalTimes
}

// localTimes returns the local time of every zone of the config at now, for
// the store's scripts (LocalTimes). Local minutes change on whole seconds
// (zone offsets are whole seconds), so one second's answer serves every
// decision made in it.
func (cc *compiledConfig) localTimes(now time.Time) LocalTimes {
	sec := now.Unix()
	if c := cc.local.Load(); c != nil && c.second == sec {
		return c.times
	}
	at := time.Unix(sec, 0)
	times := make(LocalTimes, len(cc.zones))
	for _, loc := range cc.zones {
		day, minute := localMinute(at, loc)
		times[loc.String()] = [2]int64{day, int64(minute)}
	}
	cc.local.Store(&localCache{second: sec, times: times})
	return times
}
