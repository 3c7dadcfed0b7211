package engine

import (
	"fmt"
	"net/mail"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/language"
)

// Limits on one lead. They bound the size of a stored record and of a trace.
const (
	MaxIDBytes         = 128
	MaxAttributes      = 64
	MaxAttrKeyBytes    = 128
	MaxAttrValueBytes  = 1024
	MaxLeadFieldBytes  = 512
	MaxWorkspaceBytes  = 64
	DefaultWorkspace   = "default"
	maxScore           = 100
	maxEmployeeCount   = 10_000_000
	attributesField    = "lead.attributes"
	leadSubmittedField = "lead.submitted_at"
)

// SubmittedAtTolerance is how far a lead's submitted_at may be later than
// the time it was received (a form backend's clock running fast): within
// it, submitted_at is clamped to the time received and the history says
// so; beyond it, the lead is refused.
const SubmittedAtTolerance = 5 * time.Minute

// OutOfRangeTime stands for a timestamp the wire carried that is no valid
// time (internal/pbconv), so that validation names it as such.
var OutOfRangeTime = time.Unix(-1, 0)

// ClampedNote is the received history entry's note for a lead whose
// submitted_at (in) was clamped to receivedAt ("" when it was not).
func ClampedNote(in Lead, receivedAt time.Time) string {
	s := in.SubmittedAt
	if !s.After(receivedAt) || s.After(receivedAt.Add(SubmittedAtTolerance)) {
		return ""
	}
	return NoteMark + string(NoteClamped) + NoteSep + s.UTC().Format(time.RFC3339Nano)
}

// earliestSubmission bounds submitted_at from below: older times are typos
// (or out of JSON's range), never real form submissions.
var earliestSubmission = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// Lead is one inbound record. See proto/leadrouter/v1/lead.proto for the
// meaning of each field.
type Lead struct {
	ID            string            `json:"id"`
	Email         string            `json:"email,omitempty"`
	FirstName     string            `json:"first_name,omitempty"`
	LastName      string            `json:"last_name,omitempty"`
	Company       string            `json:"company,omitempty"`
	CompanyDomain string            `json:"company_domain,omitempty"`
	Country       string            `json:"country,omitempty"`
	Region        string            `json:"region,omitempty"`
	PostalCode    string            `json:"postal_code,omitempty"`
	Industry      string            `json:"industry,omitempty"`
	EmployeeCount int32             `json:"employee_count,omitempty"`
	Source        string            `json:"source,omitempty"`
	Product       string            `json:"product,omitempty"`
	Language      string            `json:"language,omitempty"`
	Score         *int32            `json:"score,omitempty"`
	Attributes    map[string]string `json:"attributes,omitempty"`
	SubmittedAt   time.Time         `json:"submitted_at"`
}

// NormalizeWorkspace maps the empty workspace to DefaultWorkspace and checks
// the name: 1 to 64 characters of letters, digits, '-', '_' and '.'. The name
// becomes a Redis Cluster hash tag, so braces are never allowed.
func NormalizeWorkspace(ws string) (string, error) {
	if ws == "" {
		return DefaultWorkspace, nil
	}
	var v violations
	if len(ws) > MaxWorkspaceBytes {
		v.add("workspace", "longer than %d bytes", MaxWorkspaceBytes)
	} else if !isWorkspaceName(ws) {
		v.add("workspace", "%q may contain only letters, digits, '-', '_' and '.'", ws)
	}
	return ws, v.err()
}

// isWorkspaceName reports whether ws has only letters, digits, '-', '_'
// and '.'.
func isWorkspaceName(ws string) bool {
	return isIdent(ws) && !strings.ContainsAny(ws, "@:")
}

// isIdent reports whether s is a config identifier: letters, digits, '-',
// '_', '.', '@' and ':'. Identifiers are embedded in Redis keys and trace
// lines, so whitespace and control characters are excluded.
func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case r == '-', r == '_', r == '.', r == '@', r == ':':
		default:
			return false
		}
	}
	return true
}

// NormalizeLead validates a lead and returns its canonical form: trimmed
// fields, lower-case email and domain, upper-case country, canonical language
// tag, company_domain derived from the email, submitted_at defaulted to
// receivedAt. Every problem is reported, each with the field it concerns.
func NormalizeLead(in Lead, receivedAt time.Time) (Lead, error) {
	var v violations
	l := in
	l.ID = in.ID
	switch {
	case l.ID == "":
		v.add("lead.id", "required")
	case len(l.ID) > MaxIDBytes:
		v.add("lead.id", "%d bytes, at most %d allowed", len(l.ID), MaxIDBytes)
	case !isPrintable(l.ID):
		v.add("lead.id", "must be printable UTF-8 without spaces or control characters")
	}
	texts := []struct {
		field string
		value *string
	}{
		{"lead.email", &l.Email}, {"lead.first_name", &l.FirstName}, {"lead.last_name", &l.LastName},
		{"lead.company", &l.Company}, {"lead.company_domain", &l.CompanyDomain}, {"lead.country", &l.Country},
		{"lead.region", &l.Region}, {"lead.postal_code", &l.PostalCode}, {"lead.industry", &l.Industry},
		{"lead.source", &l.Source}, {"lead.product", &l.Product}, {"lead.language", &l.Language},
	}
	for _, t := range texts {
		*t.value = strings.TrimSpace(*t.value)
		if len(*t.value) > MaxLeadFieldBytes {
			v.add(t.field, "%d bytes, at most %d allowed", len(*t.value), MaxLeadFieldBytes)
			*t.value = ""
		} else if !utf8.ValidString(*t.value) {
			v.add(t.field, "not valid UTF-8")
			*t.value = ""
		}
	}
	if l.Email != "" {
		if email, err := NormalizeEmail(l.Email); err != nil {
			v.add("lead.email", "not a valid email address (%v)", err)
		} else {
			l.Email = email
		}
	}
	l.CompanyDomain = strings.ToLower(strings.TrimSuffix(l.CompanyDomain, "."))
	if l.CompanyDomain == "" && l.Email != "" {
		if at := strings.LastIndexByte(l.Email, '@'); at >= 0 {
			l.CompanyDomain = l.Email[at+1:]
		}
	}
	if l.Country != "" {
		c, ok := canonicalCountry(l.Country)
		if !ok {
			v.add("lead.country", "%q is not an ISO 3166-1 alpha-2 country code", l.Country)
		}
		l.Country = c
	}
	if l.Language != "" {
		tag, err := canonicalLanguage(l.Language)
		if err != nil {
			v.add("lead.language", "%q is not a BCP 47 language tag", l.Language)
		}
		l.Language = tag
	}
	if l.Score != nil && (*l.Score < 0 || *l.Score > maxScore) {
		v.add("lead.score", "%d is outside 0-%d", *l.Score, maxScore)
	}
	if l.EmployeeCount < 0 || l.EmployeeCount > maxEmployeeCount {
		v.add("lead.employee_count", "%d is outside 0-%d", l.EmployeeCount, maxEmployeeCount)
	}
	checkAttributes(&v, attributesField, l.Attributes)
	switch {
	case l.SubmittedAt.IsZero():
		l.SubmittedAt = receivedAt
	case l.SubmittedAt.Equal(OutOfRangeTime):
		v.add(leadSubmittedField, "out of range: not a valid timestamp (seconds in years 0001-9999, nanos 0-999999999)")
	case l.SubmittedAt.After(receivedAt.Add(SubmittedAtTolerance)):
		v.add(leadSubmittedField, "%s is later than the time received (%s) by more than %s",
			l.SubmittedAt.Format(time.RFC3339Nano), receivedAt.UTC().Format(time.RFC3339Nano), SubmittedAtTolerance)
	case l.SubmittedAt.After(receivedAt):
		l.SubmittedAt = receivedAt // a sender's clock ahead of ours: ClampedNote records it
	case l.SubmittedAt.Before(earliestSubmission):
		v.add(leadSubmittedField, "%s is before %s", l.SubmittedAt.Format(time.RFC3339), earliestSubmission.Format(time.DateOnly))
	}
	l.SubmittedAt = l.SubmittedAt.UTC()
	return l, v.err()
}

func checkAttributes(v *violations, field string, attrs map[string]string) {
	if len(attrs) > MaxAttributes {
		v.add(field, "%d attributes, at most %d allowed", len(attrs), MaxAttributes)
		return
	}
	// The field path is formatted only for a violation: most leads have none.
	path := func(k string) string { return fmt.Sprintf("%s[%q]", field, k) }
	for k, val := range attrs {
		switch {
		case k == "":
			v.add(field, "empty attribute key")
		case len(k) > MaxAttrKeyBytes:
			v.add(path(k), "key is %d bytes, at most %d allowed", len(k), MaxAttrKeyBytes)
		case !utf8.ValidString(k) || !utf8.ValidString(val):
			v.add(path(k), "not valid UTF-8")
		case len(val) > MaxAttrValueBytes:
			v.add(path(k), "value is %d bytes, at most %d allowed", len(val), MaxAttrValueBytes)
		}
	}
}

// checkEmail accepts a bare address (no display name, no angle brackets).
func checkEmail(s string) error {
	if plainAddress(s) {
		return nil
	}
	addr, err := mail.ParseAddress(s)
	if err != nil {
		return err
	}
	if addr.Name != "" || addr.Address != s {
		return fmt.Errorf("want a bare address")
	}
	at := strings.LastIndexByte(s, '@')
	if !strings.Contains(s[at+1:], ".") {
		return fmt.Errorf("domain has no dot")
	}
	return nil
}

// plainAddress reports whether s is the common form of an address, which
// net/mail accepts exactly as it is: local@domain, both dot-atoms of ASCII
// letters, digits and RFC 5322 atext symbols, with a dot in the domain.
// checkEmail takes the net/mail path for everything else.
func plainAddress(s string) bool {
	at := strings.IndexByte(s, '@')
	if at < 0 {
		return false
	}
	domain := s[at+1:]
	return dotAtom(s[:at]) && dotAtom(domain) && strings.IndexByte(domain, '.') >= 0
}

// dotAtom reports whether s is atext runs joined by single dots.
func dotAtom(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '.':
			if s[i-1] == '.' {
				return false
			}
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

func isPrintable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) || unicode.IsSpace(r) {
			return false
		}
	}
	return true
}

// canonicalLanguage returns the canonical form of a BCP 47 tag ("pt-br" ->
// "pt-BR"). Leads carry few distinct tags, so valid ones are remembered
// (up to maxLanguageCache of them): parsing one costs more than the rest of
// a lead's validation.
func canonicalLanguage(s string) (string, error) {
	if c, ok := languageCache.Load(s); ok {
		return c.(string), nil
	}
	tag, err := language.Parse(s)
	if err != nil {
		return s, err
	}
	c := tag.String()
	if languageCacheSize.Load() < maxLanguageCache {
		if _, loaded := languageCache.LoadOrStore(s, c); !loaded {
			languageCacheSize.Add(1)
		}
	}
	return c, nil
}

const maxLanguageCache = 4096

var (
	languageCache     sync.Map // tag as given -> canonical form
	languageCacheSize atomic.Int64
)

// sameContent reports whether a repeat of a lead (normalized; submitted
// says whether the sender set submitted_at, else it defaulted to the time
// received) carries what the stored one does.
func sameContent(stored, repeat *Lead, submitted bool) bool {
	a, b := *stored, *repeat
	if !submitted {
		b.SubmittedAt = a.SubmittedAt
	}
	if (a.Score == nil) != (b.Score == nil) || (a.Score != nil && *a.Score != *b.Score) ||
		!a.SubmittedAt.Equal(b.SubmittedAt) || len(a.Attributes) != len(b.Attributes) {
		return false
	}
	for k, v := range a.Attributes {
		if w, ok := b.Attributes[k]; !ok || w != v {
			return false
		}
	}
	a.Score, b.Score, a.Attributes, b.Attributes = nil, nil, nil, nil
	a.SubmittedAt, b.SubmittedAt = time.Time{}, time.Time{}
	return reflect.DeepEqual(a, b)
}
