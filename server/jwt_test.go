package server_test

import (
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/leadrouter/leadrouter/auth"
	pb "github.com/leadrouter/leadrouter/gen/leadrouter/v1"
	"github.com/leadrouter/leadrouter/internal/redistest"
	"github.com/leadrouter/leadrouter/server"
)

// TestStreamEndsWithItsJWT: a stream opened with a JWT ends UNAUTHENTICATED
// when the JWT expires (exp plus the leeway), not before; one opened with a
// longer-lived JWT keeps running and gets the next event.
func TestStreamEndsWithItsJWT(t *testing.T) {
	secret := []byte("server-test-secret-of-at-least-32-bytes")
	const leeway = 100 * time.Millisecond
	j, err := auth.NewJWT(secret, auth.JWTOptions{Leeway: leeway})
	if err != nil {
		t.Fatal(err)
	}
	ws := redistest.Workspace(t)
	admin, set := tokenSet(t, auth.Entry{Name: "admin", Workspace: ws, Role: auth.RoleAdmin})
	in := startWith(t, redistest.RealStore(t), server.Options{Auth: server.NewAuth(set.WithJWT(j), server.AuthOptions{})})
	in.applyYAMLAs(t, as(t, admin["admin"]), ws, watchConfig)
	issue := func(exp time.Time) string {
		t.Helper()
		tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
			"sub": "dash", "workspace": ws, "role": "manager", "exp": exp.Unix()}).SignedString(secret)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	// exp is in whole seconds: this one is 2 to 3 s away.
	exp := time.Unix(time.Now().Add(3*time.Second).Unix(), 0)
	short, long := watchEventsAs(t, in, ws, issue(exp)), watchEventsAs(t, in, ws, issue(time.Now().Add(time.Hour)))
	_, err = short.Recv()
	ended := time.Now()
	if status.Code(err) != codes.Unauthenticated || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("stream of the expiring JWT: %v, want UNAUTHENTICATED saying it expired", err)
	}
	if ended.Before(exp.Add(leeway)) {
		t.Errorf("ended at %v, before the JWT's exp %v plus the leeway", ended, exp)
	}
	if _, err := in.routing.AssignLead(as(t, admin["admin"]), &pb.AssignLeadRequest{Workspace: ws, Lead: &pb.Lead{Id: "after"}}); err != nil {
		t.Fatal(err)
	}
	if e, err := long.Recv(); err != nil || e.GetEvent().GetLeadId() != "after" {
		t.Fatalf("stream of the long-lived JWT: %v %v, want the next event", e, err)
	}
}

// TestJWTCallers: JWTs carry the same binding as file tokens and get the
// same checks: role, workspace and rep id; an expired one is
// UNAUTHENTICATED and says so; one subject's re-issued JWTs share one
// AssignLead rate limit.
func TestJWTCallers(t *testing.T) {
	secret := []byte("server-test-secret-of-at-least-32-bytes")
	j, err := auth.NewJWT(secret, auth.JWTOptions{Issuer: "idp"})
	if err != nil {
		t.Fatal(err)
	}
	ws := redistest.Workspace(t)
	admin, set := tokenSet(t, auth.Entry{Name: "admin", Workspace: ws, Role: auth.RoleAdmin})
	in := startWith(t, redistest.RealStore(t), server.Options{
		Auth: server.NewAuth(set.WithJWT(j), server.AuthOptions{AssignRate: 0.001, AssignBurst: 2})})
	in.applyYAMLAs(t, as(t, admin["admin"]), ws, threeReps)

	issue := func(claims jwt.MapClaims) string {
		t.Helper()
		base := jwt.MapClaims{"iss": "idp", "workspace": ws, "exp": time.Now().Add(time.Hour).Unix(), "iat": time.Now().UnixNano()}
		for k, v := range claims {
			base[k] = v
		}
		tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, base).SignedString(secret)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	assign := func(token, ws, id string) error {
		_, err := in.routing.AssignLead(as(t, token), &pb.AssignLeadRequest{Workspace: ws, Lead: &pb.Lead{Id: id, Country: "DE"}})
		return err
	}
	setStatus := func(token, rep string) error {
		_, err := in.rep.SetRepStatus(as(t, token), &pb.SetRepStatusRequest{Workspace: ws, RepId: rep, Status: pb.RepStatus_REP_STATUS_AWAY})
		return err
	}
	code := func(err error) codes.Code { return status.Code(err) }

	forms := jwt.MapClaims{"sub": "forms", "role": "intake"}
	if err := assign(issue(forms), ws, "j1"); err != nil {
		t.Fatalf("intake JWT AssignLead: %v", err)
	}
	if err := assign(issue(forms), "elsewhere", "j2"); code(err) != codes.PermissionDenied {
		t.Fatalf("intake JWT in another workspace: %v, want PERMISSION_DENIED", err)
	}
	ava := issue(jwt.MapClaims{"sub": "ava", "role": "rep", "rep_id": "a"})
	if err := assign(ava, ws, "j3"); code(err) != codes.PermissionDenied {
		t.Fatalf("rep JWT AssignLead: %v, want PERMISSION_DENIED", err)
	}
	if err := setStatus(ava, "a"); err != nil {
		t.Fatalf("rep JWT sets its own status: %v", err)
	}
	if err := setStatus(ava, "b"); code(err) != codes.PermissionDenied {
		t.Fatalf("rep JWT sets another rep's status: %v, want PERMISSION_DENIED", err)
	}
	expired := issue(jwt.MapClaims{"sub": "forms", "role": "intake", "exp": time.Now().Add(-time.Hour).Unix()})
	if err := assign(expired, ws, "j4"); code(err) != codes.Unauthenticated || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("expired JWT: %v, want UNAUTHENTICATED saying expired", err)
	}
	if err := assign(issue(jwt.MapClaims{"sub": "forms", "role": "intake", "iss": "other"}), ws, "j5"); code(err) != codes.Unauthenticated {
		t.Fatalf("JWT of another issuer: %v, want UNAUTHENTICATED", err)
	}
	// The burst is 2 and "forms" has used 1 (the call to another
	// workspace was refused before the limit): one more, then refused,
	// though every call carries a freshly issued JWT.
	if err := assign(issue(forms), ws, "j6"); err != nil {
		t.Fatalf("second call of the burst: %v", err)
	}
	if err := assign(issue(forms), ws, "j7"); code(err) != codes.ResourceExhausted {
		t.Fatalf("third call past a burst of 2: %v, want RESOURCE_EXHAUSTED", err)
	}
	if err := assign(issue(jwt.MapClaims{"sub": "other-forms", "role": "intake"}), ws, "j8"); err != nil {
		t.Fatalf("another subject has its own bucket: %v", err)
	}
}
