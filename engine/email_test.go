package engine

import (
	"net/mail"
	"testing"
)

// FuzzPlainAddress: the fast path of checkEmail accepts only addresses that
// net/mail accepts as they are.
func FuzzPlainAddress(f *testing.F) {
	for _, s := range []string{
		"jane@example.com", "Jane.Doe+tag@mail.example.co.uk", "a@b.c", "x@localhost", "@example.com",
		"jane@", "jane..doe@example.com", ".jane@example.com", "jane.@example.com", "jane@example..com",
		"jane@.example.com", "jane@example.com.", "ja ne@example.com", `"jane"@example.com`, "jane@[127.0.0.1]",
		"jane@exa@mple.com", "José@example.com", "jane@example.com (Jane)", "Jane <jane@example.com>",
		"o'neil@example.ie", "{x}|~!#$%&*/=?^_`@example.com", "jane@ex-ample.com", "jane@-example.com",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !plainAddress(s) {
			return
		}
		addr, err := mail.ParseAddress(s)
		if err != nil || addr.Name != "" || addr.Address != s {
			t.Fatalf("plainAddress(%q) but net/mail: %v %+v", s, err, addr)
		}
	})
}
