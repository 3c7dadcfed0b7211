package httpapi

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/leadrouter/leadrouter/engine"
	pb "github.com/leadrouter/leadrouter/gen/leadrouter/v1"
	"github.com/leadrouter/leadrouter/internal/stdwebhooks"
	"github.com/leadrouter/leadrouter/server"
)

// Webhook intake: POST /v1/intake/{workspace}/{intake_id}, a form tool's
// submission. The intake (engine.Intake, in the routing config) says how
// the request is signed and how its body becomes a Lead. The order of the
// checks: the body's size (413), the intake (404), its rate (429), the
// signature (401: nothing is written), the mapping (400, naming the lead
// field and the body path), then the decision, answered as AssignLead's
// BASIC view. A repeat of a lead id is idempotent, as in AssignLead.

// MaxIntakeBodyBytes bounds a posted submission.
const MaxIntakeBodyBytes = 256 << 10

// IntakeBackend is what the intake needs of the server (server.Server).
type IntakeBackend interface {
	Intake(ctx context.Context, ws, id string) (*engine.Intake, error)
	AssignFromIntake(ctx context.Context, ws, id string, lead *pb.Lead, from map[string]string) (*pb.AssignLeadResponse, error)
}

// maxLimiters bounds the per-intake rate limiters kept: past it they are
// all dropped (each intake starts a full burst again).
const maxLimiters = 10_000

// limiters holds one token bucket per workspace and intake.
type limiters struct {
	mu sync.Mutex
	m  map[string]*rate.Limiter
}

func (l *limiters) allow(key string, perSecond float64, burst int) bool {
	l.mu.Lock()
	lim := l.m[key]
	if lim == nil {
		if len(l.m) >= maxLimiters {
			l.m = map[string]*rate.Limiter{}
		}
		lim = rate.NewLimiter(rate.Limit(perSecond), burst)
		l.m[key] = lim
	} else if lim.Limit() != rate.Limit(perSecond) || lim.Burst() != burst {
		lim.SetLimit(rate.Limit(perSecond))
		lim.SetBurst(burst)
	}
	l.mu.Unlock()
	return lim.Allow()
}

func (e *edge) intake(w http.ResponseWriter, r *http.Request) {
	if rw, ok := w.(*recorder); ok {
		rw.route = "POST /v1/intake/{workspace}/{intake_id}"
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, r, http.StatusMethodNotAllowed, status.New(codes.Unimplemented, fmt.Sprintf("method %s is not allowed on an intake: POST", r.Method)))
		return
	}
	if e.o.Intakes == nil {
		writeError(w, r, http.StatusNotFound, status.New(codes.NotFound, "this server has no webhook intake"))
		return
	}
	ws, id := r.PathValue("workspace"), r.PathValue("intake_id")
	body, err := readBody(w, r, MaxIntakeBodyBytes)
	if err != nil {
		writeBodyError(w, r, err, MaxIntakeBodyBytes)
		return
	}
	ctx := r.Context()
	in, err := e.o.Intakes.Intake(ctx, ws, id)
	if err != nil {
		writeStatus(w, r, err)
		return
	}
	secret, err := in.Secret()
	if err != nil {
		e.o.Logger.ErrorContext(ctx, "intake secret unavailable: every request to it is refused", "workspace", ws, "intake", id, "err", err)
		writeError(w, r, http.StatusServiceUnavailable, status.New(codes.Unavailable, "the intake's secret is not available on this server"))
		return
	}
	if err := verifySignature(&in.Signature, secret, r.Header, body, time.Now()); err != nil {
		var bad misconfigured
		if errors.As(err, &bad) {
			e.o.Logger.ErrorContext(ctx, "intake secret unusable: every request to it is refused", "workspace", ws, "intake", id, "err", err)
			writeError(w, r, http.StatusServiceUnavailable, status.New(codes.Unavailable, "the intake's secret is not usable on this server"))
			return
		}
		writeError(w, r, http.StatusUnauthorized, status.New(codes.Unauthenticated, err.Error()))
		return
	}
	// Only signed requests count against the intake's rate: unsigned ones
	// cannot use up the form tool's budget.
	perSecond, burst := in.Rate()
	if !e.limits.allow(ws+"/"+id, perSecond, burst) {
		writeError(w, r, http.StatusTooManyRequests, status.New(codes.ResourceExhausted,
			fmt.Sprintf("intake %s is over its limit of intakes[].rate_per_second %g (burst %d): retry later", id, perSecond, burst)))
		return
	}
	lead, paths, err := mapLead(in, r.Header, body)
	if err != nil {
		if _, isStatus := status.FromError(err); !isStatus {
			err = server.Status(err) // the mapping's field violations
		}
		writeStatus(w, r, err)
		return
	}
	resp, err := e.o.Intakes.AssignFromIntake(ctx, ws, id, lead, paths)
	if err != nil {
		writeStatus(w, r, err)
		return
	}
	out, err := jsonCodec.Marshal(resp)
	if err != nil {
		writeStatus(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(out)
}

// verifySignature checks a request's signature under the intake's scheme.
func verifySignature(sig *engine.IntakeSignature, secret []byte, h http.Header, body []byte, now time.Time) error {
	switch sig.Scheme {
	case engine.SchemeHMACSHA256:
		got := strings.TrimSpace(h.Get(sig.Header))
		if got == "" {
			return fmt.Errorf("missing signature header %s", sig.Header)
		}
		got = strings.TrimPrefix(got, "sha256=")
		var mac []byte
		var err error
		if sig.Encoding == "BASE64" {
			mac, err = base64.StdEncoding.DecodeString(got)
		} else {
			mac, err = hex.DecodeString(got)
		}
		if err != nil {
			return fmt.Errorf("signature header %s is not %s", sig.Header, strings.ToLower(sig.Encoding))
		}
		if !hmac.Equal(mac, hmacSHA256(secret, body)) {
			return fmt.Errorf("signature header %s does not match the body", sig.Header)
		}
		return nil
	case engine.SchemeStandardWebhooks:
		id, ts, sigs := h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature")
		if id == "" || ts == "" || sigs == "" {
			return fmt.Errorf("missing webhook-id, webhook-timestamp or webhook-signature header")
		}
		sec, err := strconv.ParseInt(ts, 10, 64)
		if err != nil {
			return fmt.Errorf("webhook-timestamp %q is not unix seconds", ts)
		}
		tol := time.Duration(sig.Tolerance)
		if tol <= 0 {
			tol = engine.DefaultSignatureTolerance
		}
		if d := now.Sub(time.Unix(sec, 0)); d > tol || d < -tol {
			return fmt.Errorf("webhook-timestamp %s is %s from now, outside the tolerance of %s", ts, d.Round(time.Second), tol)
		}
		key, err := stdwebhooks.Key(secret)
		if err != nil {
			return misconfigured{err}
		}
		if stdwebhooks.Verify(key, sigs, id, ts, body) {
			return nil
		}
		return fmt.Errorf("no v1 signature in webhook-signature matches the body")
	}
	return fmt.Errorf("unknown signature scheme %q", sig.Scheme)
}

// misconfigured is a verification that failed on the server's side (its
// secret), not the request's: logged, and answered 503 without detail.
type misconfigured struct{ error }

func hmacSHA256(key, msg []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	return m.Sum(nil)
}

// mapLead turns a posted body into a Lead by the intake's mapping. It
// returns, by lead field, where each value came from ("body path x",
// "header y"), for errors. A value of the wrong kind, or one the Lead field cannot hold,
// is INVALID_ARGUMENT naming the lead field and the body path.
func mapLead(in *engine.Intake, h http.Header, body []byte) (*pb.Lead, map[string]string, error) {
	get, err := bodyReader(h.Get("Content-Type"), body)
	if err != nil {
		return nil, nil, err
	}
	var v violations
	lead := &pb.Lead{}
	paths := map[string]string{}
	if name, ok := strings.CutPrefix(in.LeadID, engine.LeadHeaderPrefix); ok {
		lead.Id = h.Get(name)
		paths["id"] = "header " + name
		if lead.Id == "" {
			v.add("lead.id", fmt.Sprintf("no lead id: the request has no %s header", name))
		}
	} else {
		paths["id"] = "body path " + in.LeadID
		switch val, found := get(in.LeadID); {
		case !found:
			v.add("lead.id", fmt.Sprintf("no lead id at body path %s", in.LeadID))
		default:
			s, ok := scalar(val)
			if !ok || s == "" {
				v.add("lead.id", fmt.Sprintf("body path %s holds %s, not a lead id", in.LeadID, kindOf(val)))
			}
			lead.Id = s
		}
	}
	fields := make([]string, 0, len(in.Mapping)+len(in.Defaults))
	for f := range in.Mapping {
		fields = append(fields, f)
	}
	for f := range in.Defaults {
		if _, ok := in.Mapping[f]; !ok {
			fields = append(fields, f)
		}
	}
	slices.Sort(fields)
	for _, field := range fields {
		var val any
		found := false
		from := "defaults." + field
		if path, ok := in.Mapping[field]; ok {
			val, found = get(path)
			from = "body path " + path
			paths[field] = from
		}
		if !found || val == nil {
			def, ok := in.Defaults[field]
			if !ok {
				continue
			}
			val, from = def, "defaults."+field
		}
		s, ok := scalar(val)
		if !ok {
			v.add("lead."+field, fmt.Sprintf("%s holds %s, not a value", from, kindOf(val)))
			continue
		}
		// One field at a time, so that an error names its field.
		one, err := json.Marshal(map[string]any{field: leadValue(field, val, s)})
		part := &pb.Lead{}
		if err == nil {
			err = protojson.Unmarshal(one, part)
		}
		if err == nil {
			proto.Merge(lead, part)
		}
		if err != nil {
			v.add("lead."+field, fmt.Sprintf("%q from %s: %v", s, from, protoErr(err)))
		}
	}
	names := make([]string, 0, len(in.Attributes))
	for n := range in.Attributes {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, name := range names {
		path := in.Attributes[name]
		val, found := get(path)
		if !found || val == nil {
			continue
		}
		s, ok := scalar(val)
		if !ok {
			v.add("lead.attributes."+name, fmt.Sprintf("body path %s holds %s, not a value", path, kindOf(val)))
			continue
		}
		if lead.Attributes == nil {
			lead.Attributes = map[string]string{}
		}
		lead.Attributes[name] = s
		paths["attributes."+name] = "body path " + path
	}
	if err := v.err(); err != nil {
		return nil, nil, err
	}
	return lead, paths, nil
}

// bodyReader returns how to read a body path's value: JSON by dotted path
// (json.Number for numbers), a form-encoded body by field name.
func bodyReader(contentType string, body []byte) (func(path string) (any, bool), error) {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil && contentType != "" {
		return nil, status.Errorf(codes.InvalidArgument, "Content-Type %q: %v", contentType, err)
	}
	switch {
	case mt == "application/x-www-form-urlencoded":
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "the form-encoded body: %v", err)
		}
		return func(path string) (any, bool) {
			if !form.Has(path) {
				return nil, false
			}
			return form.Get(path), true
		}, nil
	case mt == "application/json" || strings.HasSuffix(mt, "+json") || mt == "":
		if err := syntaxError(body); err != nil {
			return nil, status.Error(codes.InvalidArgument, err.Error())
		}
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		var doc any
		if err := dec.Decode(&doc); err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "invalid JSON: %v", err)
		}
		return func(path string) (any, bool) {
			steps, err := engine.ParseBodyPath(path)
			if err != nil {
				return nil, false
			}
			return engine.Lookup(doc, steps)
		}, nil
	}
	return nil, status.Errorf(codes.InvalidArgument, "Content-Type %s: an intake takes application/json or application/x-www-form-urlencoded", mt)
}

// scalar is a body value as text: strings, numbers and booleans; false for
// objects and arrays.
func scalar(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case json.Number:
		return x.String(), true
	case bool:
		return strconv.FormatBool(x), true
	}
	return "", false
}

// leadValue is a scalar as the Lead's JSON field takes it: numbers for the
// counts, RFC 3339 for submitted_at (a number is unix seconds, or
// milliseconds past the year 33658), text otherwise.
func leadValue(field string, v any, s string) any {
	switch field {
	case "employee_count", "score":
		if n, ok := v.(json.Number); ok {
			return n
		}
		return s
	case "submitted_at":
		if n, err := strconv.ParseFloat(s, 64); err == nil {
			if n > 1e12 {
				return time.UnixMilli(int64(n)).UTC().Format(time.RFC3339Nano)
			}
			return time.Unix(int64(n), 0).UTC().Format(time.RFC3339Nano)
		}
	}
	return s
}

func kindOf(v any) string {
	switch v.(type) {
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	case nil:
		return "null"
	}
	return "a value"
}

// protoErr trims protojson's prefix from an error.
func protoErr(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, "): "); strings.HasPrefix(msg, "proto:") && i > 0 {
		return msg[i+3:]
	}
	return strings.TrimPrefix(msg, "proto: ")
}

// violations collects the problems of one mapped body, answered together
// as INVALID_ARGUMENT with field violations (server.Status).
type violations []engine.FieldViolation

func (v *violations) add(field, desc string) {
	*v = append(*v, engine.FieldViolation{Field: field, Description: desc})
}

func (v violations) err() error {
	if len(v) == 0 {
		return nil
	}
	return &engine.ValidationError{Violations: v}
}
