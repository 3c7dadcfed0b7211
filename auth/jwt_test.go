package auth_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/leadrouter/leadrouter/auth"
)

// signer is a key pair of one algorithm: the verifier's key file and the
// private key an identity provider signs with.
type signer struct {
	method  jwt.SigningMethod
	private any
	keyFile []byte
}

func publicPEM(t *testing.T, pub crypto.PublicKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func signers(t *testing.T) map[string]signer {
	t.Helper()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	edPub, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	secret := []byte("0123456789abcdef0123456789abcdef-hs256")
	return map[string]signer{
		"HS256": {jwt.SigningMethodHS256, secret, append(append([]byte{}, secret...), '\n')},
		"RS256": {jwt.SigningMethodRS256, rsaKey, publicPEM(t, &rsaKey.PublicKey)},
		"ES256": {jwt.SigningMethodES256, ecKey, publicPEM(t, &ecKey.PublicKey)},
		"EdDSA": {jwt.SigningMethodEdDSA, edKey, publicPEM(t, edPub)},
	}
}

func sign(t *testing.T, s signer, claims jwt.MapClaims) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(s.method, claims).SignedString(s.private)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func repClaims() jwt.MapClaims {
	return jwt.MapClaims{"workspace": "acme", "role": "rep", "rep_id": "ava", "sub": "ava@acme.example",
		"iss": "https://idp.example", "aud": "leadrouter", "exp": time.Now().Add(time.Hour).Unix()}
}

// TestJWTVerifies: each algorithm's tokens verify into the identity their
// claims bind, through the same Lookup a token file uses.
func TestJWTVerifies(t *testing.T) {
	for alg, s := range signers(t) {
		t.Run(alg, func(t *testing.T) {
			j, err := auth.NewJWT(s.keyFile, auth.JWTOptions{Issuer: "https://idp.example", Audience: "leadrouter"})
			if err != nil {
				t.Fatal(err)
			}
			if got := j.Algorithms(); len(got) != 1 || got[0] != alg {
				t.Fatalf("algorithms %v, want [%s]", got, alg)
			}
			id, err := (*auth.Tokens)(nil).WithJWT(j).Lookup(sign(t, s, repClaims()))
			if err != nil {
				t.Fatal(err)
			}
			if id.Workspace != "acme" || id.Role != auth.RoleRep || id.RepID != "ava" || id.Name != "ava@acme.example" {
				t.Fatalf("identity %+v", id)
			}
			if !strings.HasPrefix(id.Key, "jwt:") {
				t.Fatalf("key %q, want a jwt: key", id.Key)
			}
		})
	}
}

// TestJWTRefused: every way a JWT can be wrong is refused, with the reason.
func TestJWTRefused(t *testing.T) {
	ss := signers(t)
	rs := ss["RS256"]
	j, err := auth.NewJWT(rs.keyFile, auth.JWTOptions{Issuer: "https://idp.example", Audience: "leadrouter"})
	if err != nil {
		t.Fatal(err)
	}
	with := func(k string, v any) jwt.MapClaims {
		c := repClaims()
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	// alg=HS256 signed with the RSA public key file as the secret: the
	// classic algorithm confusion; alg=none: no signature at all.
	confused := sign(t, signer{jwt.SigningMethodHS256, rs.keyFile, nil}, repClaims())
	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, repClaims()).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	tampered := sign(t, rs, repClaims())
	parts := strings.Split(tampered, ".")
	forged := sign(t, rs, with("role", "admin"))
	parts[1] = strings.Split(forged, ".")[1] // admin claims under the rep token's signature
	cases := map[string]struct {
		token, want string
	}{
		"expired":             {sign(t, rs, with("exp", time.Now().Add(-time.Hour).Unix())), "expired"},
		"no exp":              {sign(t, rs, with("exp", nil)), "exp"},
		"not yet valid":       {sign(t, rs, with("nbf", time.Now().Add(time.Hour).Unix())), "not valid yet"},
		"wrong issuer":        {sign(t, rs, with("iss", "https://evil.example")), "issuer"},
		"wrong audience":      {sign(t, rs, with("aud", "someone-else")), "audience"},
		"other key":           {sign(t, signers(t)["RS256"], repClaims()), "verification"},
		"other algorithm":     {sign(t, ss["ES256"], repClaims()), "signing method"},
		"algorithm confused":  {confused, "signing method"},
		"alg none":            {none, "signing method"},
		"tampered claims":     {strings.Join(parts, "."), "verification"},
		"rep without rep_id":  {sign(t, rs, with("rep_id", nil)), "rep_id: required"},
		"no workspace":        {sign(t, rs, with("workspace", nil)), "workspace: required"},
		"unknown role":        {sign(t, rs, with("role", "root")), "role"},
		"intake with rep_id":  {sign(t, rs, with("role", "intake")), "rep_id: only a rep"},
		"rep_id not a string": {sign(t, rs, with("rep_id", 7)), "rep_id: must be a string"},
	}
	tokens := (*auth.Tokens)(nil).WithJWT(j)
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			id, err := tokens.Lookup(c.token)
			if err == nil {
				t.Fatalf("accepted: %+v", id)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q, want it to mention %q", err, c.want)
			}
		})
	}
}

// TestJWTKeyFiles: key files that would weaken verification are refused.
func TestJWTKeyFiles(t *testing.T) {
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	priv, err := x509.MarshalPKCS8PrivateKey(small)
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		file []byte
		want string
	}{
		"short secret": {[]byte("too-short\n"), "at least 32"},
		"private key":  {pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: priv}), "never a private key"},
		"small RSA":    {publicPEM(t, &small.PublicKey), "at least 2048"},
		"garbage PEM":  {pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte("nope")}), "asn1"},
		// Public keys in forms that are not a complete PEM block must not
		// become HS256 secrets: anyone holding the public key could sign.
		"damaged PEM": {bytes.TrimRight(publicPEM(t, &small.PublicKey), "-\n"), "looks like a public key"},
		"JWK":         {[]byte(`{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB"}`), "looks like a public key"},
		"SSH key":     {[]byte("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl ops@example"), "looks like a public key"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := auth.NewJWT(c.file, auth.JWTOptions{}); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want it to mention %q", err, c.want)
			}
		})
	}
}

// TestJWTBesideTokenFile: a server with both accepts both; file tokens
// are not mistaken for JWTs.
func TestJWTBesideTokenFile(t *testing.T) {
	s := signers(t)["HS256"]
	j, err := auth.NewJWT(s.keyFile, auth.JWTOptions{})
	if err != nil {
		t.Fatal(err)
	}
	token, entry, err := auth.NewToken(auth.Entry{Name: "forms", Workspace: "acme", Role: auth.RoleIntake})
	if err != nil {
		t.Fatal(err)
	}
	file, err := auth.ParseFile(strings.NewReader("tokens:\n  - {sha256: " + entry.SHA256 + ", name: forms, workspace: acme, role: intake}\n"))
	if err != nil {
		t.Fatal(err)
	}
	both := file.WithJWT(j)
	if id, err := both.Lookup(token); err != nil || id.Name != "forms" {
		t.Fatalf("file token: %+v %v", id, err)
	}
	c := repClaims()
	delete(c, "iss")
	delete(c, "aud")
	if id, err := both.Lookup(sign(t, s, c)); err != nil || id.RepID != "ava" {
		t.Fatalf("jwt: %+v %v", id, err)
	}
	if _, err := file.Lookup(sign(t, s, c)); err == nil {
		t.Fatal("a server without a JWT key accepted a JWT")
	}
}

// FuzzVerifyJWT: whatever arrives in the authorization metadata, Lookup
// neither panics nor accepts a token the key did not sign.
func FuzzVerifyJWT(f *testing.F) {
	secret := []byte("fuzz-secret-0123456789abcdef0123456789")
	j, err := auth.NewJWT(secret, auth.JWTOptions{})
	if err != nil {
		f.Fatal(err)
	}
	other, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"workspace": "w", "role": "admin",
		"exp": time.Now().Add(time.Hour).Unix()}).SignedString([]byte("another-secret-0123456789abcdef0123456"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(other)
	f.Add("eyJhbGciOiJub25lIn0.eyJ3b3Jrc3BhY2UiOiJ3Iiwicm9sZSI6ImFkbWluIn0.")
	f.Add("a.b.c")
	f.Add("..")
	f.Add("lr_notajwt")
	tokens := (*auth.Tokens)(nil).WithJWT(j)
	f.Fuzz(func(t *testing.T, token string) {
		if id, err := tokens.Lookup(token); err == nil {
			t.Fatalf("accepted a token not signed with the key: %q -> %+v", token, id)
		}
	})
}

// TestJWTClaimNamesAreExact: a claim named like a binding claim in another
// case ("Role", say, a user-editable attribute an identity provider
// copied in) does not override it.
func TestJWTClaimNamesAreExact(t *testing.T) {
	s := signers(t)["HS256"]
	j, err := auth.NewJWT(s.keyFile, auth.JWTOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := repClaims()
	c["Role"], c["Rep_id"], c["WORKSPACE"] = "admin", "", "other"
	id, err := (*auth.Tokens)(nil).WithJWT(j).Lookup(sign(t, s, c))
	if err != nil {
		t.Fatal(err)
	}
	if id.Role != auth.RoleRep || id.RepID != "ava" || id.Workspace != "acme" {
		t.Fatalf("identity %+v, want rep ava of acme", id)
	}
}

// TestJWTKeysDoNotCollide: two credentials whose fields concatenate to the
// same text still have their own rate-limit keys.
func TestJWTKeysDoNotCollide(t *testing.T) {
	s := signers(t)["HS256"]
	j, err := auth.NewJWT(s.keyFile, auth.JWTOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tokens := (*auth.Tokens)(nil).WithJWT(j)
	exp := time.Now().Add(time.Hour).Unix()
	a, err := tokens.Lookup(sign(t, s, jwt.MapClaims{"iss": "a", "sub": "b|acme|rep|x", "workspace": "acme", "role": "intake", "exp": exp}))
	if err != nil {
		t.Fatal(err)
	}
	b, err := tokens.Lookup(sign(t, s, jwt.MapClaims{"iss": "a|b", "sub": "acme|rep|x", "workspace": "acme", "role": "intake", "exp": exp}))
	if err != nil {
		t.Fatal(err)
	}
	if a.Key == b.Key {
		t.Fatalf("two credentials share the key %q", a.Key)
	}
}
