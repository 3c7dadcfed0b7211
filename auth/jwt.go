package auth

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// JWT verifies signed tokens an identity provider issues, as an
// alternative to listing every token in a token file. The key decides the
// algorithm, so a token cannot choose a weaker one: a shared secret means
// HS256, an RSA public key RS256, an EC P-256 (P-384) key ES256 (ES384),
// an Ed25519 key EdDSA. Claims:
//
//	{"workspace": "acme", "role": "rep", "rep_id": "ava",
//	 "sub": "ava@acme.example", "exp": 1767225600}
//
// exp is required; nbf, iss and aud are checked when present (iss and aud
// must match when the verifier is given them).
type JWT struct {
	key     any
	methods []string
	opts    []jwt.ParserOption
	leeway  time.Duration
}

// JWTOptions are the claims a JWT must carry besides its binding.
type JWTOptions struct {
	Issuer   string // required iss (empty: not checked)
	Audience string // required in aud (empty: not checked)
	// Leeway tolerates clock skew on exp and nbf (default 30s).
	Leeway time.Duration
}

// minSecret is the shortest HS256 secret accepted: RFC 7518 asks for a key
// as long as the hash (256 bits).
const minSecret = 32

// NewJWT returns a verifier for keyPEM: a PEM public key (PKIX "PUBLIC
// KEY", or "RSA PUBLIC KEY") or, when the file holds no PEM block, an
// HS256 secret of at least 32 bytes (surrounding whitespace ignored).
func NewJWT(keyPEM []byte, o JWTOptions) (*JWT, error) {
	j := &JWT{}
	if block, _ := pem.Decode(keyPEM); block != nil {
		key, err := parsePublicKey(block)
		if err != nil {
			return nil, err
		}
		switch k := key.(type) {
		case *rsa.PublicKey:
			if k.N.BitLen() < 2048 {
				return nil, fmt.Errorf("RSA key of %d bits: want at least 2048", k.N.BitLen())
			}
			j.methods = []string{jwt.SigningMethodRS256.Alg()}
		case *ecdsa.PublicKey:
			switch k.Curve {
			case elliptic.P256():
				j.methods = []string{jwt.SigningMethodES256.Alg()}
			case elliptic.P384():
				j.methods = []string{jwt.SigningMethodES384.Alg()}
			default:
				return nil, errors.New("EC key: want curve P-256 (ES256) or P-384 (ES384)")
			}
		case ed25519.PublicKey:
			j.methods = []string{jwt.SigningMethodEdDSA.Alg()}
		default:
			return nil, fmt.Errorf("unsupported public key type %T", key)
		}
		j.key = key
	} else {
		secret := bytes.TrimSpace(keyPEM)
		if looksLikePublicKey(secret) {
			// A damaged PEM, a JWK or an SSH public key is public: taken
			// as an HMAC secret, anyone could sign with it.
			return nil, errors.New("the key file looks like a public key but holds no complete PEM block (PUBLIC KEY); refusing to use it as an HS256 secret")
		}
		if len(secret) < minSecret {
			return nil, fmt.Errorf("HS256 secret of %d bytes: want at least %d (or a PEM public key)", len(secret), minSecret)
		}
		j.key, j.methods = secret, []string{jwt.SigningMethodHS256.Alg()}
	}
	leeway := o.Leeway
	if leeway == 0 {
		leeway = 30 * time.Second
	}
	j.leeway = leeway
	j.opts = []jwt.ParserOption{jwt.WithValidMethods(j.methods), jwt.WithExpirationRequired(), jwt.WithLeeway(leeway)}
	if o.Issuer != "" {
		j.opts = append(j.opts, jwt.WithIssuer(o.Issuer))
	}
	if o.Audience != "" {
		j.opts = append(j.opts, jwt.WithAudience(o.Audience))
	}
	return j, nil
}

// LoadJWT reads the key file at path (see NewJWT).
func LoadJWT(path string, o JWTOptions) (*JWT, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	j, err := NewJWT(b, o)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return j, nil
}

func parsePublicKey(block *pem.Block) (any, error) {
	switch block.Type {
	case "PUBLIC KEY":
		return x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		return x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		return c.PublicKey, nil
	default:
		return nil, fmt.Errorf("PEM block %q: want a PUBLIC KEY (never a private key here)", block.Type)
	}
}

// looksLikePublicKey: text that is a key in some form, never a secret.
func looksLikePublicKey(b []byte) bool {
	s := string(b)
	for _, p := range []string{"-----BEGIN", "{", "ssh-", "ecdsa-sha2-", "sk-ssh-", "sk-ecdsa-"} {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return strings.Contains(s, "PUBLIC KEY") || strings.Contains(s, "PRIVATE KEY")
}

// Algorithms are the JWT algorithms the key accepts.
func (j *JWT) Algorithms() []string { return j.methods }

// Verify checks a JWT's signature, times, issuer and audience, and its
// binding (workspace, role, rep id) the way a token file entry is checked.
// The binding claims are read by their exact names: a "Role" beside
// "role" (say, a user-editable attribute the identity provider copied in)
// is not a role.
func (j *JWT) Verify(token string) (*Identity, error) {
	c := jwt.MapClaims{}
	if _, err := jwt.ParseWithClaims(token, c, func(*jwt.Token) (any, error) { return j.key, nil }, j.opts...); err != nil {
		return nil, fmt.Errorf("jwt: %w", err)
	}
	var problems []problem
	str := func(name string) string {
		v, ok := c[name]
		if !ok {
			return ""
		}
		s, ok := v.(string)
		if !ok {
			problems = append(problems, problem{name, "must be a string"})
		}
		return s
	}
	workspace, role, repID := str("workspace"), Role(str("role")), str("rep_id")
	issuer, subject := str("iss"), str("sub")
	ws, bad := checkBinding(workspace, role, repID)
	if problems = append(problems, bad...); len(problems) > 0 {
		msgs := make([]string, len(problems))
		for i, p := range problems {
			msgs[i] = p.field + ": " + p.msg
		}
		return nil, fmt.Errorf("jwt claims: %s", strings.Join(msgs, "; "))
	}
	name := subject
	if name == "" {
		name = "jwt"
	}
	// The fields are JSON-encoded so that no two credentials share a key
	// (a "|" in a subject cannot shift one field into the next).
	key, err := json.Marshal([]string{issuer, subject, ws, string(role), repID})
	if err != nil {
		return nil, err
	}
	id := &Identity{Name: name, Key: "jwt:" + string(key), Workspace: ws, Role: role, RepID: repID}
	if exp, err := c.GetExpirationTime(); err == nil && exp != nil { // required: the parser checked it
		id.Expires = exp.Add(j.leeway)
	}
	return id, nil
}

// looksLikeJWT: three base64url parts. Tokens NewToken makes have no dots.
func looksLikeJWT(token string) bool { return strings.Count(token, ".") == 2 }
