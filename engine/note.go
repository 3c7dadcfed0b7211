package engine

import (
	"strconv"
	"strings"
)

// NoteCode names a sentence the store's scripts record: a lead's reason, a
// history or event detail, a trace's label or note. Scripts write a code
// and its arguments (NoteMark, the code, then each argument after
// NoteSep); the text a person reads is rendered here, in one place
// (RenderNote). Text that does not start with NoteMark is its own text:
// reasons the engine rendered before the call, an operator's reason, and
// what records written before codes hold.
type NoteCode string

const (
	NoteBacklog      NoteCode = "backlog"       // n, pool: queued behind n earlier leads
	NoteNobody       NoteCode = "nobody"        // pool [, next pool, wait ms]: nobody eligible, maybe escalating
	NoteStickyOwner  NoteCode = "sticky_owner"  // lead: the owner of the person's open lead (never their address)
	NoteAccountOwner NoteCode = "account_owner" // domain: the account's owner
	NoteAcceptWithin NoteCode = "accept_within" // ms: an offer's deadline
	NoteFrom         NoteCode = "from"          // pool: an escalation's origin
	NoteEscalated    NoteCode = "escalated"     // from, to: an escalation
	NoteMissedOffers NoteCode = "missed_offers" // n: a rep auto-paused
	NoteMaxOffers    NoteCode = "max_offers"    // n, max: queued after max_offers withdrawn offers
	NoteCatchUp      NoteCode = "catch_up"      // a round-robin turn owed for an absence
	NoteSLAReassign  NoteCode = "sla_reassign"  // reassigned for a breached first-contact SLA
	NoteNoContact    NoteCode = "no_contact"    // an SLA warning or breach with no contact
	NoteLateContact  NoteCode = "late_contact"  // first contact after the deadline
	NoteNotAccepted  NoteCode = "not_accepted"  // an offer withdrawn at its deadline
	NoteStatus       NoteCode = "status"        // from, to [, why code]: a presence change
	NoteDesktopBack  NoteCode = "desktop_back"  // presence restored on reconnect
	NoteNoDesktop    NoteCode = "no_desktop"    // set OFFLINE with no desktop connection
	NoteOperator     NoteCode = "operator"      // reason: placed by an operator (ReassignLead)
	NoteClamped      NoteCode = "clamped"       // time: a submitted_at later than received, clamped
	NoteMark                  = "\x01"          // starts a coded note
	NoteSep                   = "\x1f"          // separates a note's code and arguments
)

// RenderNote is the text of a recorded note: a coded note rendered, any
// other text as it is.
func RenderNote(s string) string {
	if !strings.HasPrefix(s, NoteMark) {
		return s
	}
	f := strings.Split(s[len(NoteMark):], NoteSep)
	arg := func(i int) string {
		if i+1 < len(f) {
			return f[i+1]
		}
		return ""
	}
	secs := func(i int) string {
		ms, _ := strconv.ParseFloat(arg(i), 64)
		return strconv.FormatFloat(ms/1000, 'f', -1, 64) + "s"
	}
	switch NoteCode(f[0]) {
	case NoteBacklog:
		return "waiting behind " + arg(0) + " earlier lead(s) queued on " + arg(1)
	case NoteNobody:
		if arg(1) != "" {
			return "nobody eligible in " + arg(0) + "; escalates to " + arg(1) + " after " + secs(2)
		}
		return "nobody eligible in " + arg(0)
	case NoteStickyOwner:
		return "owner of the person's open lead " + arg(0)
	case NoteAccountOwner:
		return "account owner of " + arg(0)
	case NoteAcceptWithin:
		return "accept within " + secs(0)
	case NoteFrom:
		return "from " + arg(0)
	case NoteEscalated:
		return "from " + arg(0) + " to " + arg(1)
	case NoteMissedOffers:
		return arg(0) + " offers in a row not accepted"
	case NoteMaxOffers:
		return arg(0) + " offers withdrawn without acceptance (max_offers " + arg(1) + ")"
	case NoteCatchUp:
		return "catching up a turn missed while away"
	case NoteSLAReassign:
		return "first-contact SLA breached"
	case NoteNoContact:
		return "no first contact yet"
	case NoteLateContact:
		return "first contact after the SLA deadline"
	case NoteNotAccepted:
		return "not accepted in time"
	case NoteStatus:
		from := arg(0)
		if from == "" {
			from = "NONE"
		}
		if why := arg(2); why != "" {
			return from + " -> " + arg(1) + ": " + RenderNote(NoteMark+why)
		}
		return from + " -> " + arg(1)
	case NoteDesktopBack:
		return "desktop connected again"
	case NoteNoDesktop:
		return "no desktop connection"
	case NoteClamped:
		return "submitted_at " + arg(0) + " was later than the time received; clamped to it"
	case NoteOperator:
		if arg(0) == "" {
			return "placed by an operator"
		}
		return "placed by an operator: " + arg(0)
	}
	return strings.Join(f, " ") // a code of a newer version: its words
}

// NoteCodes lists every code, for tests and documentation.
var NoteCodes = []NoteCode{NoteBacklog, NoteNobody, NoteStickyOwner, NoteAccountOwner, NoteAcceptWithin, NoteFrom,
	NoteEscalated, NoteMissedOffers, NoteMaxOffers, NoteCatchUp, NoteSLAReassign, NoteNoContact, NoteLateContact,
	NoteNotAccepted, NoteStatus, NoteDesktopBack, NoteNoDesktop, NoteOperator, NoteClamped}
