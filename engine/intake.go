package engine

import (
	"context"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

// An intake is a webhook endpoint for a form tool (POST
// /v1/intake/{workspace}/{intake_id}, httpapi/intake.go): the signature
// over the posted body is its credential, and its mapping turns the body
// into a Lead that is routed as AssignLead routes it.
type Intake struct {
	ID string `json:"id" yaml:"id"`
	// The shared secret, from the environment or a file (never inline in
	// the config): exactly one of the two.
	SecretEnv  string          `json:"secret_env,omitempty" yaml:"secret_env,omitempty"`
	SecretFile string          `json:"secret_file,omitempty" yaml:"secret_file,omitempty"`
	Signature  IntakeSignature `json:"signature" yaml:"signature"`
	// LeadID is where the lead id comes from: "header:<name>" (for
	// example header:webhook-id) or a body path.
	LeadID string `json:"lead_id" yaml:"lead_id"`
	// Mapping maps Lead fields (email, first_name, country, ...) to body
	// paths: dotted JSON paths ("fields.email", "data.answers[3].text",
	// "answers[field.ref=email].email" for the first element of an array
	// whose field.ref is email), or form field names for a form-encoded
	// body.
	Mapping map[string]string `json:"mapping,omitempty" yaml:"mapping,omitempty"`
	// Defaults are Lead field values used when the mapped value is absent.
	Defaults map[string]string `json:"defaults,omitempty" yaml:"defaults,omitempty"`
	// Attributes copies body paths into the lead's attributes, by
	// attribute name.
	Attributes map[string]string `json:"attributes,omitempty" yaml:"attributes,omitempty"`
	// RatePerSecond and Burst bound the intake's requests per replica
	// (defaults DefaultIntakeRate, DefaultIntakeBurst).
	RatePerSecond float64 `json:"rate_per_second,omitempty" yaml:"rate_per_second,omitempty"`
	Burst         int32   `json:"burst,omitempty" yaml:"burst,omitempty"`
}

// IntakeSignature says how an intake's requests are signed.
type IntakeSignature struct {
	Scheme SignatureScheme `json:"scheme" yaml:"scheme"`
	// Header carries an HMAC_SHA256 signature, in Encoding (HEX, the
	// default, or BASE64); a "sha256=" prefix is allowed.
	Header   string `json:"header,omitempty" yaml:"header,omitempty"`
	Encoding string `json:"encoding,omitempty" yaml:"encoding,omitempty"`
	// Tolerance is how far a STANDARD_WEBHOOKS webhook-timestamp may be
	// from now (default DefaultSignatureTolerance).
	Tolerance Duration `json:"tolerance,omitempty" yaml:"tolerance,omitempty"`
}

// SignatureScheme is how an intake's requests are signed.
type SignatureScheme string

const (
	// SchemeHMACSHA256: HMAC-SHA256 of the raw body with the secret, in a
	// named header.
	SchemeHMACSHA256 SignatureScheme = "HMAC_SHA256"
	// SchemeStandardWebhooks: the Standard Webhooks scheme (webhook-id,
	// webhook-timestamp, webhook-signature: v1,<base64 HMAC-SHA256 of
	// id.timestamp.body>); a "whsec_" secret is base64 after the prefix.
	SchemeStandardWebhooks SignatureScheme = "STANDARD_WEBHOOKS"
)

// Intake defaults and bounds.
const (
	DefaultSignatureTolerance = 5 * time.Minute
	DefaultIntakeRate         = 50
	DefaultIntakeBurst        = 100
	MaxIntakes                = 100
	MaxIntakeMappings         = 100
	MaxBodyPathBytes          = 256
)

// LeadHeaderPrefix marks an intake's lead id taken from a request header.
const LeadHeaderPrefix = "header:"

// IntakeLeadFields are the Lead fields an intake may map or default, by
// their JSON names; the id comes from lead_id and attributes from
// attributes.
var IntakeLeadFields = func() []string {
	var out []string
	t := reflect.TypeFor[Lead]()
	for i := 0; i < t.NumField(); i++ {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "id" && name != "attributes" {
			out = append(out, name)
		}
	}
	return out
}()

// SecretEnvPrefix starts the name of every environment variable an
// intake may read its secret from: a workspace's config cannot name the
// server's own variables (its Redis password, say).
const SecretEnvPrefix = "LR_INTAKE_"

// MaxSecretBytes bounds a secret file.
const MaxSecretBytes = 4 << 10

// Secret reads the intake's secret now (a file may be rotated), trimmed
// of surrounding white space. A secret file must be a regular file of at
// most MaxSecretBytes.
func (in *Intake) Secret() ([]byte, error) {
	v, err := readSecret(in.SecretEnv, in.SecretFile)
	if err != nil {
		return nil, fmt.Errorf("intake %s: %w", in.ID, err)
	}
	return []byte(v), nil
}

// Rate is the intake's request rate bound and burst.
func (in *Intake) Rate() (float64, int) {
	r, b := in.RatePerSecond, int(in.Burst)
	if r <= 0 {
		r = DefaultIntakeRate
	}
	if b <= 0 {
		b = DefaultIntakeBurst
	}
	return r, b
}

// Intake returns a workspace's intake by id from the cached config, or
// from the store when the cache lacks it and was loaded more than
// intakeRefresh ago (it may have been added since; requests to unknown
// ids, which anyone can send, reload it at most that often); ErrNotFound
// when the config has none of that id.
func (e *Engine) Intake(ctx context.Context, ws, id string) (*Intake, error) {
	ws, err := NormalizeWorkspace(ws)
	if err != nil {
		return nil, err
	}
	cc, err := e.config(ctx, ws, false)
	if err != nil {
		return nil, err
	}
	if in := cc.cfg.Intake(id); in != nil {
		return in, nil
	}
	if time.Since(cc.loadedAt) > intakeRefresh {
		if cc, err = e.config(ctx, ws, true); err != nil {
			return nil, err
		}
		if in := cc.cfg.Intake(id); in != nil {
			return in, nil
		}
	}
	return nil, fmt.Errorf("%w: workspace %s has no intake %q", ErrNotFound, ws, id)
}

// intakeRefresh is how stale a cached config may be before a request to
// an intake it lacks reloads it.
const intakeRefresh = time.Second

// Intake returns the config's intake by id, nil when it has none.
func (c *Config) Intake(id string) *Intake {
	for i := range c.Intakes {
		if c.Intakes[i].ID == id {
			return &c.Intakes[i]
		}
	}
	return nil
}

// checkIntakes validates the intakes and fills in their defaults.
func checkIntakes(v *violations, intakes []Intake) {
	if len(intakes) > MaxIntakes {
		v.add("intakes", "%d entries, at most %d allowed", len(intakes), MaxIntakes)
		return
	}
	seen := map[string]bool{}
	for i := range intakes {
		in := &intakes[i]
		p := fmt.Sprintf("intakes[%d]", i)
		checkID(v, p+".id", in.ID, seen, "intake")
		checkSecretSource(v, p, "secret_env", "secret_file", in.SecretEnv, in.SecretFile, SecretEnvPrefix, "the secret")
		sig := &in.Signature
		switch sig.Scheme {
		case SchemeHMACSHA256:
			if sig.Header == "" {
				v.add(p+".signature.header", "required with HMAC_SHA256: the header carrying the signature")
			}
			switch sig.Encoding = strings.ToUpper(sig.Encoding); sig.Encoding {
			case "":
				sig.Encoding = "HEX"
			case "HEX", "BASE64":
			default:
				v.add(p+".signature.encoding", "%q is not one of HEX, BASE64", sig.Encoding)
			}
		case SchemeStandardWebhooks:
			if sig.Header != "" || sig.Encoding != "" {
				v.add(p+".signature", "header and encoding are set by the STANDARD_WEBHOOKS scheme")
			}
		case "":
			v.add(p+".signature.scheme", "required: HMAC_SHA256 or STANDARD_WEBHOOKS")
		default:
			v.add(p+".signature.scheme", "%q is not one of HMAC_SHA256, STANDARD_WEBHOOKS", sig.Scheme)
		}
		switch {
		case sig.Tolerance < 0:
			v.add(p+".signature.tolerance", "%s is negative", time.Duration(sig.Tolerance))
		case sig.Tolerance > 0 && sig.Scheme == SchemeHMACSHA256:
			v.add(p+".signature.tolerance", "HMAC_SHA256 signs no timestamp: a tolerance needs STANDARD_WEBHOOKS")
		case sig.Tolerance == 0 && sig.Scheme == SchemeStandardWebhooks:
			sig.Tolerance = Duration(DefaultSignatureTolerance)
		}
		switch header, isHeader := strings.CutPrefix(in.LeadID, LeadHeaderPrefix); {
		case in.LeadID == "":
			v.add(p+".lead_id", "required: header:webhook-id (STANDARD_WEBHOOKS) or a body path")
		case isHeader && (sig.Scheme != SchemeStandardWebhooks || !strings.EqualFold(header, "webhook-id")):
			// Only a signed header may name the lead: an unsigned one would
			// let one captured request be replayed as any number of leads.
			v.add(p+".lead_id", "%q: the one header that can carry the lead id is webhook-id, signed by STANDARD_WEBHOOKS; with HMAC_SHA256 take it from the body", in.LeadID)
		case !isHeader:
			if err := CheckBodyPath(in.LeadID); err != nil {
				v.add(p+".lead_id", "%v", err)
			}
		}
		if len(in.Mapping)+len(in.Defaults)+len(in.Attributes) > MaxIntakeMappings {
			v.add(p, "%d mappings, defaults and attributes, at most %d allowed", len(in.Mapping)+len(in.Defaults)+len(in.Attributes), MaxIntakeMappings)
		}
		for _, field := range sortedKeys(in.Mapping) {
			if !slices.Contains(IntakeLeadFields, field) {
				v.add(p+".mapping."+field, "not a lead field (one of %s)", strings.Join(IntakeLeadFields, ", "))
			} else if err := CheckBodyPath(in.Mapping[field]); err != nil {
				v.add(p+".mapping."+field, "%v", err)
			}
		}
		for _, field := range sortedKeys(in.Defaults) {
			if !slices.Contains(IntakeLeadFields, field) {
				v.add(p+".defaults."+field, "not a lead field (one of %s)", strings.Join(IntakeLeadFields, ", "))
			}
		}
		for _, name := range sortedKeys(in.Attributes) {
			if name == "" || len(name) > MaxIDBytes {
				v.add(p+".attributes", "attribute name %q: 1 to %d bytes", name, MaxIDBytes)
			} else if err := CheckBodyPath(in.Attributes[name]); err != nil {
				v.add(p+".attributes."+name, "%v", err)
			}
		}
		if !(in.RatePerSecond >= 0) || math.IsInf(in.RatePerSecond, 0) {
			v.add(p+".rate_per_second", "%g: want a positive number (0: the default)", in.RatePerSecond)
		}
		if in.Burst < 0 {
			v.add(p+".burst", "%d is negative", in.Burst)
		}
	}
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// A body path names a value in a posted body: keys separated by dots,
// each optionally followed by selectors: [n], the n-th element (from 0) of
// an array, or [path=value], the first element of an array whose value at
// path (a dotted path inside the element) is value. A form-encoded body
// has no nesting: the path is the form field's name.

// PathStep is one step of a body path: a key, then its selectors.
type PathStep struct {
	Key       string
	Selectors []PathSelector
}

// PathSelector picks an array element: by Index, or (Match set) the first
// whose value at Match equals Value.
type PathSelector struct {
	Index int
	Match []PathStep
	Value string
}

// ParseBodyPath parses a body path.
func ParseBodyPath(path string) ([]PathStep, error) {
	if path == "" {
		return nil, fmt.Errorf("empty body path")
	}
	if len(path) > MaxBodyPathBytes {
		return nil, fmt.Errorf("body path of %d bytes, at most %d allowed", len(path), MaxBodyPathBytes)
	}
	var steps []PathStep
	rest := path
	for rest != "" {
		var step PathStep
		end := strings.IndexAny(rest, ".[")
		if end < 0 {
			end = len(rest)
		}
		step.Key, rest = rest[:end], rest[end:]
		for strings.HasPrefix(rest, "[") {
			closing := matchingBracket(rest)
			if closing < 0 {
				return nil, fmt.Errorf("body path %q: [ without ]", path)
			}
			inner := rest[1:closing]
			rest = rest[closing+1:]
			if at, value, ok := strings.Cut(inner, "="); ok {
				match, err := ParseBodyPath(at)
				if err != nil {
					return nil, fmt.Errorf("body path %q: in [%s]: %v", path, inner, err)
				}
				step.Selectors = append(step.Selectors, PathSelector{Match: match, Value: value})
				continue
			}
			n, err := strconv.Atoi(inner)
			if err != nil || n < 0 {
				return nil, fmt.Errorf("body path %q: [%s] is neither an index nor [path=value]", path, inner)
			}
			step.Selectors = append(step.Selectors, PathSelector{Index: n})
		}
		if step.Key == "" && len(step.Selectors) == 0 {
			return nil, fmt.Errorf("body path %q: empty key", path)
		}
		steps = append(steps, step)
		if strings.HasPrefix(rest, ".") {
			rest = rest[1:]
			if rest == "" {
				return nil, fmt.Errorf("body path %q: ends with a dot", path)
			}
		} else if rest != "" {
			return nil, fmt.Errorf("body path %q: unexpected %q", path, rest)
		}
	}
	return steps, nil
}

// CheckBodyPath reports whether path is a body path.
func CheckBodyPath(path string) error {
	_, err := ParseBodyPath(path)
	return err
}

// matchingBracket is the index of the ] closing the [ that s starts with.
func matchingBracket(s string) int {
	depth := 0
	for i, c := range s {
		switch c {
		case '[':
			depth++
		case ']':
			if depth--; depth == 0 {
				return i
			}
		}
	}
	return -1
}

// Lookup finds path's value in a decoded JSON body (maps, slices, strings,
// json.Number, bools): found is false when a key or an element is absent.
func Lookup(body any, steps []PathStep) (value any, found bool) {
	v := body
	for _, st := range steps {
		if st.Key != "" {
			m, ok := v.(map[string]any)
			if !ok {
				return nil, false
			}
			if v, ok = m[st.Key]; !ok {
				return nil, false
			}
		}
		for _, sel := range st.Selectors {
			arr, ok := v.([]any)
			if !ok {
				return nil, false
			}
			if sel.Match == nil {
				if sel.Index >= len(arr) {
					return nil, false
				}
				v = arr[sel.Index]
				continue
			}
			found := false
			for _, el := range arr {
				if got, ok := Lookup(el, sel.Match); ok && fmt.Sprint(got) == sel.Value {
					v, found = el, true
					break
				}
			}
			if !found {
				return nil, false
			}
		}
	}
	return v, true
}
