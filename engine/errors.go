package engine

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Sentinel errors. Callers test them with errors.Is; server/ maps each to one
// gRPC status code.
var (
	// ErrNoConfig: the workspace has no routing config yet.
	ErrNoConfig = errors.New("workspace has no routing config")
	// ErrNotFound: the lead, rep or pool does not exist.
	ErrNotFound = errors.New("not found")
	// ErrVersionConflict: an expected config version is no longer current.
	ErrVersionConflict = errors.New("config version conflict")
	// ErrStaleConfig is returned by a Store when the config version a
	// decision was made under is no longer current. The engine handles it
	// by reloading; it never reaches callers of Engine.
	ErrStaleConfig = errors.New("stale routing config")
	// ErrUnavailable: the store could not be reached; the call is safe to
	// retry.
	ErrUnavailable = errors.New("store unavailable")
	// ErrNotAssigned: the lead is not in a state the call applies to (e.g.
	// releasing a queued lead).
	ErrNotAssigned = errors.New("lead is not assigned")
	// ErrPoolHasQueue: a config may not remove a pool while leads are
	// queued on it.
	ErrPoolHasQueue = errors.New("pool has queued leads")
	// ErrQuota: the workspace holds as many records as its
	// settings.max_stored_leads allows.
	ErrQuota = errors.New("quota reached")
	// ErrConflict: the record changed between reading and writing it; the
	// engine reads again.
	ErrConflict = errors.New("record changed concurrently")
	// ErrOrphanedLeads is wrapped by *OrphansError: an apply would leave
	// leads held by reps it removes.
	ErrOrphanedLeads = errors.New("apply would orphan leads")
	// ErrRepNotInConfig: a rep call (presence, accept, reject, contact,
	// disposition, the desktop stream) names a rep the routing config does
	// not have, never added or removed since: such a rep can do nothing.
	ErrRepNotInConfig = errors.New("rep is not in the routing config")
	// ErrInvalid is wrapped by every *ValidationError.
	ErrInvalid = errors.New("invalid argument")
)

// ErrWrongCaller is wrapped by the errors of a rep acting on a lead that is
// not (or no longer) theirs: *WrongRepError and *OfferGoneError.
var ErrWrongCaller = errors.New("not this rep's lead")

// WrongRepError: the lead is offered to or held by another rep.
type WrongRepError struct {
	LeadID, Holder string
	State          State
}

func (e *WrongRepError) Error() string {
	return fmt.Sprintf("lead %q is %s to rep %s", e.LeadID, e.Verb(), e.Holder)
}

// Verb is "offered" or "assigned".
func (e *WrongRepError) Verb() string {
	if e.State == StateOffered {
		return "offered"
	}
	return "assigned"
}

func (e *WrongRepError) Is(target error) bool { return target == ErrWrongCaller }

// OfferGoneError: there is no offer to act on; it expired or the lead moved
// on.
type OfferGoneError struct {
	LeadID    string
	State     State
	ExpiredAt time.Time // when this rep's offer expired, when known
}

func (e *OfferGoneError) Error() string {
	if !e.ExpiredAt.IsZero() {
		return fmt.Sprintf("lead %q: offer expired at %s (the lead is %s now)", e.LeadID, e.ExpiredAt.Format(time.RFC3339), e.State)
	}
	return fmt.Sprintf("lead %q has no offer to accept: it is %s", e.LeadID, e.State)
}

func (e *OfferGoneError) Is(target error) bool { return target == ErrWrongCaller }

// FieldViolation is one problem with one field of a request, e.g.
// {"rules[3].targets[0].pool_id", `unknown pool "emea-smb"`}.
type FieldViolation struct {
	Field       string
	Description string
}

// ValidationError lists every problem found in one input. It matches
// ErrInvalid under errors.Is.
type ValidationError struct {
	Violations []FieldViolation
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Violations))
	for i, v := range e.Violations {
		parts[i] = v.Field + ": " + v.Description
	}
	return "invalid argument: " + strings.Join(parts, "; ")
}

func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

// violations collects FieldViolations while a validator walks its input.
type violations []FieldViolation

func (v *violations) add(field, format string, args ...any) {
	*v = append(*v, FieldViolation{Field: field, Description: fmt.Sprintf(format, args...)})
}

// err returns nil when nothing was collected, else a *ValidationError.
func (v violations) err() error {
	if len(v) == 0 {
		return nil
	}
	return &ValidationError{Violations: v}
}
