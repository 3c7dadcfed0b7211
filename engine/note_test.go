package engine_test

import (
	"strings"
	"testing"

	"github.com/leadrouter/leadrouter/engine"
)

func coded(code engine.NoteCode, args ...string) string {
	return engine.NoteMark + strings.Join(append([]string{string(code)}, args...), engine.NoteSep)
}

// TestRenderNoteEveryCode: every note a script records renders to its text
// here; text that is no note (a reason the engine wrote, an operator's, a
// record from before codes) stays as it is.
func TestRenderNoteEveryCode(t *testing.T) {
	cases := map[engine.NoteCode]struct {
		args []string
		want string
	}{
		engine.NoteBacklog:      {[]string{"3", "emea"}, "waiting behind 3 earlier lead(s) queued on emea"},
		engine.NoteNobody:       {[]string{"emea"}, "nobody eligible in emea"},
		engine.NoteStickyOwner:  {[]string{"web-1001"}, "owner of the person's open lead web-1001"},
		engine.NoteAccountOwner: {[]string{"acme.com"}, "account owner of acme.com"},
		engine.NoteAcceptWithin: {[]string{"1500"}, "accept within 1.5s"},
		engine.NoteFrom:         {[]string{"emea"}, "from emea"},
		engine.NoteEscalated:    {[]string{"emea", "global"}, "from emea to global"},
		engine.NoteMissedOffers: {[]string{"3"}, "3 offers in a row not accepted"},
		engine.NoteMaxOffers:    {[]string{"2", "2"}, "2 offers withdrawn without acceptance (max_offers 2)"},
		engine.NoteCatchUp:      {nil, "catching up a turn missed while away"},
		engine.NoteSLAReassign:  {nil, "first-contact SLA breached"},
		engine.NoteNoContact:    {nil, "no first contact yet"},
		engine.NoteLateContact:  {nil, "first contact after the SLA deadline"},
		engine.NoteNotAccepted:  {nil, "not accepted in time"},
		engine.NoteStatus:       {[]string{"", "AVAILABLE"}, "NONE -> AVAILABLE"},
		engine.NoteDesktopBack:  {nil, "desktop connected again"},
		engine.NoteNoDesktop:    {nil, "no desktop connection"},
		engine.NoteOperator:     {[]string{"vip"}, "placed by an operator: vip"},
		engine.NoteClamped:      {[]string{"2026-03-02T09:01:00Z"}, "submitted_at 2026-03-02T09:01:00Z was later than the time received; clamped to it"},
	}
	for _, code := range engine.NoteCodes {
		c, ok := cases[code]
		if !ok {
			t.Errorf("no case for note %s", code)
			continue
		}
		if got := engine.RenderNote(coded(code, c.args...)); got != c.want {
			t.Errorf("%s: %q, want %q", code, got, c.want)
		}
	}
	if len(cases) != len(engine.NoteCodes) {
		t.Errorf("%d cases for %d codes", len(cases), len(engine.NoteCodes))
	}
	for raw, want := range map[string]string{
		coded(engine.NoteNobody, "emea", "global", "30000"):            "nobody eligible in emea; escalates to global after 30s",
		coded(engine.NoteStatus, "AVAILABLE", "OFFLINE", "no_desktop"): "AVAILABLE -> OFFLINE: no desktop connection",
		"nobody eligible in emea, global":                              "nobody eligible in emea, global",
		coded("newer_code", "x"):                                       "newer_code x",
		"":                                                             "",
	} {
		if got := engine.RenderNote(raw); got != want {
			t.Errorf("%q: %q, want %q", raw, got, want)
		}
	}
}
