// Package auth is who may call leadrouter: bearer tokens bound to one
// workspace and one role (and, for reps, one rep), kept in a token file
// that holds only their SHA-256 hashes. It knows nothing of gRPC; the
// server's interceptors use it.
package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/leadrouter/leadrouter/engine"
)

// Role is what a token may do. Roles follow the API's audiences.
type Role string

// Roles.
const (
	// RoleIntake: web-form backends. AssignLead and PreviewAssignment.
	RoleIntake Role = "intake"
	// RoleRep: one rep's desktop. RepService, for that rep only.
	RoleRep Role = "rep"
	// RoleManager: managers and dashboards. EventService, GetAssignment,
	// ListReps, GetRep.
	RoleManager Role = "manager"
	// RoleAdmin: everything in its workspace.
	RoleAdmin Role = "admin"
)

// Roles lists every role.
var Roles = []Role{RoleIntake, RoleRep, RoleManager, RoleAdmin}

func validRole(r Role) bool {
	for _, x := range Roles {
		if x == r {
			return true
		}
	}
	return false
}

// Identity is who a token says the caller is.
type Identity struct {
	Name string // the token's name in the file, or a JWT's subject, for logs
	// Key names the credential for per-token limits: "token:<sha256>"
	// for a token file entry, "jwt:" and the JSON array of its issuer,
	// subject, workspace, role and rep id for a JWT.
	Key       string
	Workspace string
	Role      Role
	RepID     string // RoleRep only
	// AssignRate and AssignBurst, when AssignRate > 0, limit this token's
	// AssignLead calls (a token bucket: AssignRate per second, bursts of
	// AssignBurst); 0 uses the server's default.
	AssignRate  float64
	AssignBurst int
	// Expires is when the credential stops being accepted: a JWT's exp
	// plus the leeway. Zero for a token file entry, which lasts until the
	// file no longer lists it.
	Expires time.Time
}

// Entry is one token of a token file.
type Entry struct {
	// SHA256 is the hex SHA-256 of the token; the token itself is never
	// stored.
	SHA256      string  `yaml:"sha256"`
	Name        string  `yaml:"name,omitempty"`
	Workspace   string  `yaml:"workspace"`
	Role        Role    `yaml:"role"`
	RepID       string  `yaml:"rep_id,omitempty"`
	AssignRate  float64 `yaml:"assign_rate,omitempty"`
	AssignBurst int     `yaml:"assign_burst,omitempty"`
}

// File is a token file:
//
//	tokens:
//	  - {sha256: <64 hex>, name: web-forms, workspace: default, role: intake}
//	  - {sha256: <64 hex>, name: ava-desktop, workspace: default, role: rep, rep_id: ava}
type File struct {
	Tokens []Entry `yaml:"tokens"`
}

// Tokens are the credentials a server accepts: a parsed, checked token
// file (token hash -> identity) and, optionally, JWTs a key verifies.
type Tokens struct {
	byHash map[string]*Identity
	jwt    *JWT
}

// WithJWT returns t also accepting the JWTs j verifies (t may be nil: JWTs
// only).
func (t *Tokens) WithJWT(j *JWT) *Tokens {
	c := Tokens{jwt: j}
	if t != nil {
		c.byHash = t.byHash
	}
	return &c
}

// Len is the number of tokens.
func (t *Tokens) Len() int { return len(t.byHash) }

// maxTokenFile bounds what ParseFile reads.
const maxTokenFile = 16 << 20

// ParseFile reads and checks a token file. Every problem is reported, with
// its place (tokens[2].role: ...); nothing is accepted from a file with
// problems.
func ParseFile(r io.Reader) (*Tokens, error) {
	body, err := io.ReadAll(io.LimitReader(r, maxTokenFile+1))
	if err != nil {
		return nil, err
	}
	if len(body) > maxTokenFile {
		return nil, fmt.Errorf("token file larger than %d bytes", maxTokenFile)
	}
	var f File
	dec := yaml.NewDecoder(strings.NewReader(string(body)))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("token file: %w", err)
	}
	t := &Tokens{byHash: make(map[string]*Identity, len(f.Tokens))}
	var problems []string
	bad := func(i int, field, msg string, args ...any) {
		problems = append(problems, fmt.Sprintf("tokens[%d].%s: %s", i, field, fmt.Sprintf(msg, args...)))
	}
	for i, e := range f.Tokens {
		h := strings.ToLower(e.SHA256)
		if b, err := hex.DecodeString(h); err != nil || len(b) != sha256.Size {
			bad(i, "sha256", "want the 64 hex digits of a SHA-256 hash")
		} else if _, dup := t.byHash[h]; dup {
			bad(i, "sha256", "the same token appears twice")
		}
		ws, problems := checkBinding(e.Workspace, e.Role, e.RepID)
		for _, p := range problems {
			bad(i, p.field, "%s", p.msg)
		}
		if e.AssignRate < 0 || e.AssignBurst < 0 {
			bad(i, "assign_rate", "must not be negative")
		}
		t.byHash[h] = &Identity{Name: e.Name, Key: "token:" + h, Workspace: ws, Role: e.Role, RepID: e.RepID,
			AssignRate: e.AssignRate, AssignBurst: e.AssignBurst}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("token file: %s", strings.Join(problems, "; "))
	}
	return t, nil
}

// problem is one thing wrong with a credential's binding.
type problem struct{ field, msg string }

// checkBinding checks what a credential is bound to, the same for a token
// file entry and a JWT's claims: one workspace, a role, and for a rep
// (only) the rep's id. It returns the normalized workspace.
func checkBinding(workspace string, role Role, repID string) (string, []problem) {
	var out []problem
	ws, err := engine.NormalizeWorkspace(workspace)
	if workspace == "" {
		out = append(out, problem{"workspace", "required (a credential is bound to one workspace)"})
	} else if err != nil {
		out = append(out, problem{"workspace", err.Error()})
	}
	if !validRole(role) {
		out = append(out, problem{"role", fmt.Sprintf("%q: want one of intake, rep, manager, admin", role)})
	}
	switch {
	case role == RoleRep && repID == "":
		out = append(out, problem{"rep_id", "required for role rep"})
	case role != RoleRep && repID != "":
		out = append(out, problem{"rep_id", "only a rep credential names a rep"})
	}
	return ws, out
}

// LoadFile parses the token file at path.
func LoadFile(path string) (*Tokens, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	t, err := ParseFile(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// ErrUnknownToken: no token of the file has this hash.
var ErrUnknownToken = errors.New("unknown token")

// Lookup returns the identity of a presented token: a JWT when a JWT key
// is set and the token has a JWT's three parts, else a token of the file.
func (t *Tokens) Lookup(token string) (*Identity, error) {
	if token == "" {
		return nil, ErrUnknownToken
	}
	if t.jwt != nil && looksLikeJWT(token) {
		return t.jwt.Verify(token)
	}
	id, ok := t.byHash[Hash(token)]
	if !ok {
		return nil, ErrUnknownToken
	}
	return id, nil
}

// Hash is the hex SHA-256 of a token, as a token file stores it. Tokens are
// 256 random bits, so a plain hash is enough: there is nothing to guess.
func Hash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// TokenPrefix starts every token NewToken makes, so a leaked token is easy
// to recognise (secret scanners, logs).
const TokenPrefix = "lr_"

// NewToken returns a new random token (256 bits) and its file entry.
func NewToken(e Entry) (string, Entry, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", Entry{}, err
	}
	token := TokenPrefix + base64.RawURLEncoding.EncodeToString(b)
	e.SHA256 = Hash(token)
	return token, e, nil
}
