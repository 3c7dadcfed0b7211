package auth_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/leadrouter/leadrouter/auth"
)

const hashA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08" // sha256("test")

func TestParseFile(t *testing.T) {
	good := `tokens:
  - {sha256: ` + hashA + `, name: forms, workspace: acme, role: intake, assign_rate: 20, assign_burst: 40}
  - {sha256: ` + strings.ToUpper(auth.Hash("rep")) + `, workspace: acme, role: rep, rep_id: ava}
`
	set, err := auth.ParseFile(strings.NewReader(good))
	if err != nil {
		t.Fatal(err)
	}
	id, err := set.Lookup("test")
	if err != nil || id.Workspace != "acme" || id.Role != auth.RoleIntake || id.Name != "forms" || id.AssignRate != 20 || id.AssignBurst != 40 {
		t.Fatalf("lookup test: %+v %v", id, err)
	}
	if id, err := set.Lookup("rep"); err != nil || id.RepID != "ava" {
		t.Fatalf("lookup rep (hash written in upper case): %+v %v", id, err)
	}
	for _, bad := range []string{"", "tes", "test ", hashA} {
		if _, err := set.Lookup(bad); !errors.Is(err, auth.ErrUnknownToken) {
			t.Errorf("lookup %q: %v, want ErrUnknownToken", bad, err)
		}
	}
	if set.Len() != 2 {
		t.Fatalf("Len = %d", set.Len())
	}
}

// TestParseFileProblems: every problem is reported with its place, and a
// file with any problem is refused whole.
func TestParseFileProblems(t *testing.T) {
	for _, c := range []struct{ name, file, want string }{
		{"short hash", "tokens: [{sha256: abc, workspace: w, role: intake}]", "tokens[0].sha256"},
		{"not hex", "tokens: [{sha256: " + strings.Repeat("z", 64) + ", workspace: w, role: intake}]", "tokens[0].sha256"},
		{"duplicate", "tokens: [{sha256: " + hashA + ", workspace: w, role: intake}, {sha256: " + hashA + ", workspace: w, role: admin}]", "tokens[1].sha256: the same token appears twice"},
		{"no workspace", "tokens: [{sha256: " + hashA + ", role: intake}]", "tokens[0].workspace: required"},
		{"bad workspace", "tokens: [{sha256: " + hashA + ", workspace: 'a b', role: intake}]", "tokens[0].workspace"},
		{"unknown role", "tokens: [{sha256: " + hashA + ", workspace: w, role: root}]", `tokens[0].role: "root"`},
		{"rep without rep_id", "tokens: [{sha256: " + hashA + ", workspace: w, role: rep}]", "tokens[0].rep_id: required"},
		{"rep_id on intake", "tokens: [{sha256: " + hashA + ", workspace: w, role: intake, rep_id: ava}]", "tokens[0].rep_id: only a rep credential"},
		{"negative rate", "tokens: [{sha256: " + hashA + ", workspace: w, role: intake, assign_rate: -1}]", "tokens[0].assign_rate"},
		{"unknown field", "tokens: [{sha256: " + hashA + ", workspace: w, role: intake, scope: all}]", "scope"},
		{"not yaml", "tokens: [", "token file"},
	} {
		_, err := auth.ParseFile(strings.NewReader(c.file))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error containing %q", c.name, err, c.want)
		}
	}
	// Two problems, both reported.
	_, err := auth.ParseFile(strings.NewReader("tokens: [{sha256: x, workspace: w, role: nope}]"))
	if err == nil || !strings.Contains(err.Error(), "sha256") || !strings.Contains(err.Error(), "role") {
		t.Errorf("both problems: %v", err)
	}
}

func TestNewToken(t *testing.T) {
	tok, e, err := auth.NewToken(auth.Entry{Workspace: "w", Role: auth.RoleAdmin})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok, auth.TokenPrefix) || len(tok) < 40 || e.SHA256 != auth.Hash(tok) {
		t.Fatalf("token %q entry %+v", tok, e)
	}
	other, _, _ := auth.NewToken(auth.Entry{})
	if other == tok {
		t.Fatal("two tokens alike")
	}
}

// FuzzParseFile: any input is parsed or refused with an error, never a
// panic; a parsed file's tokens are all well formed.
func FuzzParseFile(f *testing.F) {
	f.Add("tokens:\n  - {sha256: " + hashA + ", name: forms, workspace: acme, role: intake}\n")
	f.Add("tokens: [{sha256: " + hashA + ", workspace: w, role: rep, rep_id: ava, assign_rate: 1.5, assign_burst: 3}]")
	f.Add("tokens: [{sha256: abc, workspace: '', role: root}]")
	f.Add("tokens: {}")
	f.Add("- 1\n- 2")
	f.Fuzz(func(t *testing.T, file string) {
		set, err := auth.ParseFile(strings.NewReader(file))
		if err != nil {
			return
		}
		if _, err := set.Lookup(""); err == nil {
			t.Fatal("the empty token was accepted")
		}
	})
}
