package engine

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// A person is known to the store by a keyed hash of their email address,
// never by the address: their sticky binding's key and their entries in
// the workspace's person index (which finds every record of a person for
// EraseContact) are named by it. The key is a per-workspace secret the
// store makes at the workspace's first apply (StoredConfig.PersonKey), so
// the hash of a known address cannot be looked up without the secret, and
// one workspace's hashes say nothing about another's.

// personBytes is how much of the HMAC-SHA256 a person hash keeps: 128 bits,
// 32 hex digits.
const personBytes = 16

// Person is the person hash of a normalized email under key; "" for no
// email.
func Person(key, email string) string {
	if email == "" {
		return ""
	}
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(email))
	return hex.EncodeToString(m.Sum(nil)[:personBytes])
}

// personOf is the person hash of a lead's (normalized) email under cc:
// with settings.sticky_ignore_plus, a plus-address is its base address.
func (cc *compiledConfig) personOf(email string) string {
	if cc.cfg.Settings.StickyIgnorePlus {
		email = withoutPlus(email)
	}
	return Person(cc.personKey, email)
}

// withoutPlus drops a local part's "+tag": jane+demo@acme.com is
// jane@acme.com.
func withoutPlus(email string) string {
	local, domain, ok := strings.Cut(email, "@")
	if base, _, plus := strings.Cut(local, "+"); ok && plus && base != "" {
		return base + "@" + domain
	}
	return email
}

// NormalizeEmail returns an address as leads store it (trimmed, lower
// case), or an error saying why it is not a bare address.
func NormalizeEmail(s string) (string, error) {
	s = strings.TrimSpace(s)
	if err := checkEmail(s); err != nil {
		return "", err
	}
	return strings.ToLower(s), nil
}
