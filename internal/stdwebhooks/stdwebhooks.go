// Package stdwebhooks is the Standard Webhooks signature scheme
// (standardwebhooks.com): a message is signed as
// HMAC-SHA256(key, "<webhook-id>.<webhook-timestamp>.<body>") and sent in
// webhook-signature as "v1,<base64>". The intake verifies it (httpapi) and
// the webhook sink signs with it (sinks).
package stdwebhooks

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
)

// Key is the signing key of a secret: a "whsec_" secret is base64 after
// the prefix; any other secret is its own bytes.
func Key(secret []byte) ([]byte, error) {
	b64, ok := bytes.CutPrefix(secret, []byte("whsec_"))
	if !ok {
		return secret, nil
	}
	key, err := base64.StdEncoding.DecodeString(string(b64))
	if err != nil {
		return nil, errors.New("the whsec_ secret is not base64")
	}
	return key, nil
}

// MAC is the raw HMAC-SHA256 of the signed content.
func MAC(key []byte, id, timestamp string, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Signature is the webhook-signature header value: "v1,<base64 MAC>".
func Signature(key []byte, id, timestamp string, body []byte) string {
	return "v1," + base64.StdEncoding.EncodeToString(MAC(key, id, timestamp, body))
}

// Verify reports whether any v1 signature in a webhook-signature header
// (space-separated, as senders rotating keys send several) matches.
func Verify(key []byte, header, id, timestamp string, body []byte) bool {
	want := MAC(key, id, timestamp, body)
	for _, s := range strings.Fields(header) {
		version, b64, ok := strings.Cut(s, ",")
		if !ok || version != "v1" {
			continue
		}
		if mac, err := base64.StdEncoding.DecodeString(b64); err == nil && hmac.Equal(mac, want) {
			return true
		}
	}
	return false
}
