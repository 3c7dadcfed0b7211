package chaos

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/proto"

	pb "github.com/leadrouter/leadrouter/gen/leadrouter/v1"
	"github.com/leadrouter/leadrouter/internal/parallel"
	"github.com/leadrouter/leadrouter/store"
)

// teamConfig is one round-robin pool that assigns at once (no offers).
const teamConfig = `
reps: [{id: r1}, {id: r2}, {id: r3}]
pools:
  - id: team
    accept_within: 0s
    members: [{rep_id: r1}, {rep_id: r2}, {rep_id: r3}]
rules: [{id: all, targets: [{pool_id: team}]}]
`

// serverDefaultDeadline is leadrouterd's --default-deadline, which these
// tests leave at its default: the deadline of a call whose client sets none.
const serverDefaultDeadline = time.Second

// slack is what a busy machine may add to a deadline before the answer
// reaches the client (scheduling, the race detector).
const slack = 500 * time.Millisecond

// TestChaosRedisDown: Redis frozen (SIGSTOP, a hung host: connections stay
// open and nothing answers), then killed (SIGKILL: connections refused).
// Each time, calls answer UNAVAILABLE within their deadline, the server's
// default when the client sets none, health turns NOT_SERVING, and when
// Redis is back the same leadrouterd process serves again by itself.
func TestChaosRedisDown(t *testing.T) {
	// AOF, so the killed Redis comes back with its data and the earlier
	// assignments can be checked afterwards.
	rs := startRedis(t, "--appendonly", "yes", "--appendfsync", "always")
	d := startDaemon(t, "leadrouterd", rs.URL)
	d.apply(t, teamConfig)

	// The rep each lead went to, from the replies.
	reps := map[string]string{}
	for i := range 3 {
		id := fmt.Sprint("before-", i)
		reps[id] = d.assign(t, &pb.Lead{Id: id, Country: "DE"}).GetAssignment().GetRepId()
	}

	faults := []struct {
		name          string
		cause, repair func()
	}{
		{"frozen", func() { rs.Pause(t) }, func() { rs.Resume(t) }}, // SIGSTOP, then SIGCONT
		{"killed", func() { rs.Kill(t) }, func() { rs.Start(t) }},   // SIGKILL, then a restart
	}
	for _, f := range faults {
		redisOutage(t, d, f.name, f.cause, f.repair, reps)
	}

	// Every lead sent, before, during or after an outage, has one
	// assignment, and the store's counters agree with the records.
	counted := map[string]int{}
	for id, rep := range reps {
		a := d.get(t, id)
		if a.GetState() != pb.AssignmentState_ASSIGNMENT_STATE_ASSIGNED || a.GetRepId() != rep || countKind(a, "assigned") != 1 {
			t.Fatalf("lead %s: %s rep %q history %v, want assigned once to %s", id, a.GetState(), a.GetRepId(), kinds(a), rep)
		}
		counted[rep]++
	}
	totals := d.assignedTotals(t)
	for _, rep := range []string{"r1", "r2", "r3"} {
		if totals[rep] != counted[rep] {
			t.Fatalf("rep %s: the store counts %d assignments, the records %d", rep, totals[rep], counted[rep])
		}
	}
	t.Logf("checked: after both outages all %d leads are assigned once each and the reps' counters %v match the records", len(reps), totals)
}

// redisOutage causes one Redis fault under a running leadrouterd, checks
// how the service answers during it, repairs it and checks that the same
// process recovers. reps (lead -> rep) gets the leads assigned meanwhile.
func redisOutage(t *testing.T, d *daemon, fault string, cause, repair func(), reps map[string]string) {
	cause()
	faultAt := time.Now()
	t.Logf("fault: redis %s", fault)

	// Health is polled from the fault on, to measure when it turns.
	notServing := make(chan time.Duration, 1)
	stopPoll := make(chan struct{})
	defer close(stopPoll)
	go func() {
		for {
			select {
			case <-stopPoll:
				return
			case <-time.After(20 * time.Millisecond):
			}
			if st, err := d.healthStatus(); err == nil && st == healthpb.HealthCheckResponse_NOT_SERVING {
				notServing <- time.Since(faultAt)
				return
			}
		}
	}()

	// AssignLead without a client deadline: the server's default applies.
	during := "during-" + fault
	took, err := guarded(t, 10*time.Second, "AssignLead without a deadline, redis "+fault, func() error {
		_, err := d.routing.AssignLead(context.Background(), &pb.AssignLeadRequest{Workspace: ws, Lead: &pb.Lead{Id: during, Country: "DE"}})
		return err
	})
	if codeOf(err) != codes.Unavailable || took > serverDefaultDeadline+slack {
		t.Fatalf("redis %s: AssignLead without a deadline: %v after %s, want UNAVAILABLE within the default deadline %s", fault, err, took, serverDefaultDeadline)
	}
	t.Logf("measured: redis %s: AssignLead without a client deadline answered UNAVAILABLE after %s", fault, took.Round(time.Millisecond))

	// The other services answer the same way.
	calls := []struct {
		name string
		call func() error
	}{
		{"GetAssignment", func() error {
			_, err := d.routing.GetAssignment(context.Background(), &pb.GetAssignmentRequest{Workspace: ws, LeadId: "before-0"})
			return err
		}},
		{"PreviewAssignment", func() error {
			_, err := d.routing.PreviewAssignment(context.Background(), &pb.PreviewAssignmentRequest{Workspace: ws, Lead: &pb.Lead{Id: "probe", Country: "DE"}})
			return err
		}},
		{"ListReps", func() error {
			_, err := d.admin.ListReps(context.Background(), &pb.ListRepsRequest{Workspace: ws})
			return err
		}},
		{"SetRepStatus", func() error {
			_, err := d.reps.SetRepStatus(context.Background(), &pb.SetRepStatusRequest{Workspace: ws, RepId: "r1", Status: pb.RepStatus_REP_STATUS_AVAILABLE})
			return err
		}},
	}
	var timings []string
	for _, c := range calls {
		took, err := guarded(t, 10*time.Second, c.name+" without a deadline, redis "+fault, c.call)
		if codeOf(err) != codes.Unavailable || took > serverDefaultDeadline+slack {
			t.Fatalf("redis %s: %s without a deadline: %v after %s, want UNAVAILABLE within %s", fault, c.name, err, took, serverDefaultDeadline)
		}
		timings = append(timings, fmt.Sprintf("%s %s", c.name, took.Round(time.Millisecond)))
	}
	t.Logf("measured: redis %s: UNAVAILABLE without a client deadline from %s", fault, strings.Join(timings, ", "))

	// With a client deadline shorter than the default, the answer is
	// UNAVAILABLE before it, not the client's DEADLINE_EXCEEDED.
	const clientDeadline = 300 * time.Millisecond
	took, err = guarded(t, 10*time.Second, "AssignLead with a 300ms deadline, redis "+fault, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), clientDeadline)
		defer cancel()
		_, err := d.routing.AssignLead(ctx, &pb.AssignLeadRequest{Workspace: ws, Lead: &pb.Lead{Id: during, Country: "DE"}})
		return err
	})
	if codeOf(err) != codes.Unavailable || took >= clientDeadline {
		t.Fatalf("redis %s: AssignLead with a %s deadline: %v after %s, want UNAVAILABLE before the deadline", fault, clientDeadline, err, took)
	}
	t.Logf("measured: redis %s: AssignLead with a %s client deadline answered UNAVAILABLE after %s", fault, clientDeadline, took.Round(time.Millisecond))

	select {
	case took := <-notServing:
		t.Logf("measured: redis %s: health NOT_SERVING %s after the fault", fault, took.Round(time.Millisecond))
	case <-time.After(10 * time.Second):
		st, err := d.healthStatus()
		t.Fatalf("redis %s: health is still %v (%v) %s after the fault, want NOT_SERVING", fault, st, err, time.Since(faultAt).Round(time.Millisecond))
	}
	t.Logf("checked: redis %s: AssignLead, GetAssignment, PreviewAssignment, ListReps and SetRepStatus answer UNAVAILABLE within the 1s default deadline, AssignLead within a 300ms client deadline; none hangs; health NOT_SERVING", fault)

	// Repair, and wait for the same process to serve again: the first
	// AssignLead that succeeds, then health.
	repair()
	repairedAt := time.Now()
	after := "after-" + fault
	var resp *pb.AssignLeadResponse
	firstOK := eventually(t, 15*time.Second, "AssignLead after redis "+fault+" was repaired", func() (bool, string) {
		_, err := guarded(t, 10*time.Second, "AssignLead after the repair", func() error {
			r, err := d.routing.AssignLead(context.Background(), &pb.AssignLeadRequest{Workspace: ws, Lead: &pb.Lead{Id: after, Country: "DE"}})
			resp = r
			return err
		})
		if err != nil && codeOf(err) != codes.Unavailable {
			t.Fatalf("AssignLead after redis %s was repaired: %v, want success (or UNAVAILABLE while it recovers)", fault, err)
		}
		return err == nil, fmt.Sprint(err)
	})
	if a := resp.GetAssignment(); a.GetState() != pb.AssignmentState_ASSIGNMENT_STATE_ASSIGNED || resp.GetDuplicate() {
		t.Fatalf("after redis %s: lead %s: %v (duplicate %v)", fault, after, a, resp.GetDuplicate())
	}
	reps[after] = resp.GetAssignment().GetRepId()
	d.waitHealth(healthpb.HealthCheckResponse_SERVING, 10*time.Second)
	t.Logf("measured: redis %s: after the repair the first AssignLead succeeded after %s; health SERVING %s after the repair",
		fault, firstOK.Round(time.Millisecond), time.Since(repairedAt).Round(time.Millisecond))

	// Earlier assignments are intact: a resend is the original.
	for id, rep := range reps {
		r := d.assign(t, &pb.Lead{Id: id, Country: "DE"})
		if !r.GetDuplicate() || r.GetAssignment().GetRepId() != rep {
			t.Fatalf("after redis %s: resent lead %s: rep %s duplicate %v, want the original assignment to %s", fault, id, r.GetAssignment().GetRepId(), r.GetDuplicate(), rep)
		}
	}
	// The lead whose AssignLead failed during the outage, sent again: a
	// frozen Redis may have run the script when it woke (the call had
	// reached its socket), so the retry finds that assignment; else it is
	// assigned now. Either way it is assigned once (checked at the end).
	r := d.assign(t, &pb.Lead{Id: during, Country: "DE"})
	reps[during] = r.GetAssignment().GetRepId()
	how := "was assigned by the retry"
	if r.GetDuplicate() {
		how = "had been assigned by Redis after it woke up; the retry returned that assignment"
	}
	t.Logf("checked: redis %s: the same leadrouterd process recovered without a restart (health SERVING, AssignLead succeeds), earlier assignments intact; the lead that failed during the outage %s", fault, how)
}

// TestChaosRedisDataLoss: Redis comes back empty (killed, its files gone)
// under two running replicas that still cache the old config, version 1.
// No decision is made under it: AssignLead answers FAILED_PRECONDITION
// until a config is applied again. A different config then applied through
// the other replica is version 1 too, but its id carries a new nonce, so
// the replica that cached the old version 1 decides under the new one. The
// lost lead records are why leadrouterd asks for AOF: a lead sent again
// after the loss is assigned anew.
func TestChaosRedisDataLoss(t *testing.T) {
	rs := startRedis(t, "--appendonly", "yes", "--appendfsync", "always")
	a := startDaemon(t, "replica-a", rs.URL)
	b := startDaemon(t, "replica-b", rs.URL)
	if v := a.apply(t, teamConfig); v != 1 {
		t.Fatalf("first config: version %d, want 1", v)
	}
	a.assign(t, &pb.Lead{Id: "lost-1", Country: "DE"})
	b.assign(t, &pb.Lead{Id: "lost-2", Country: "DE"})

	rs.Kill(t)
	files, err := os.ReadDir(rs.Dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if err := os.RemoveAll(filepath.Join(rs.Dir, f.Name())); err != nil {
			t.Fatal(err)
		}
	}
	rs.Start(t)

	var lastErr error
	eventually(t, 15*time.Second, "AssignLead after the data loss", func() (bool, string) {
		_, lastErr = guarded(t, 10*time.Second, "AssignLead after the data loss", func() error {
			_, err := a.routing.AssignLead(context.Background(), &pb.AssignLeadRequest{Workspace: ws, Lead: &pb.Lead{Id: "new-1", Country: "DE"}})
			return err
		})
		return codeOf(lastErr) != codes.Unavailable, fmt.Sprint(lastErr) // UNAVAILABLE while the client reconnects
	})
	if codeOf(lastErr) != codes.FailedPrecondition {
		t.Fatalf("AssignLead after Redis lost the config: %v, want FAILED_PRECONDITION (no routing config)", lastErr)
	}
	if _, err := a.routing.GetAssignment(ctxT(t), &pb.GetAssignmentRequest{Workspace: ws, LeadId: "lost-1"}); codeOf(err) != codes.NotFound {
		t.Fatalf("GetAssignment of a lost lead: %v, want NOT_FOUND", err)
	}
	t.Logf("checked: Redis restarted empty under running replicas: AssignLead answers FAILED_PRECONDITION (no decision under the cached config), a lost lead is NOT_FOUND")

	// Another config, through the other replica: version 1 again.
	if v := b.apply(t, `
reps: [{id: n1}, {id: n2}]
pools: [{id: fresh, accept_within: 0s, members: [{rep_id: n1}, {rep_id: n2}]}]
rules: [{id: all, targets: [{pool_id: fresh}]}]
`); v != 1 {
		t.Fatalf("config applied after the loss: version %d, want 1 (a new history)", v)
	}
	for _, c := range []struct{ id, want string }{{"lost-1", "ASSIGNED:n1"}, {"new-1", "ASSIGNED:n2"}} {
		if r := a.assign(t, &pb.Lead{Id: c.id, Country: "DE"}); r.GetDuplicate() || stateOf(r.GetAssignment()) != c.want {
			t.Fatalf("lead %s through replica-a after the new config: %s (duplicate %v), want %s, new", c.id, stateOf(r.GetAssignment()), r.GetDuplicate(), c.want)
		}
	}
	if totals := a.assignedTotals(t); len(totals) != 2 || totals["n1"] != 1 || totals["n2"] != 1 {
		t.Fatalf("counters after the data loss %v, want n1 and n2 with one each", totals)
	}
	a.waitHealth(healthpb.HealthCheckResponse_SERVING, 10*time.Second)
	t.Logf("checked: a different config applied through replica-b after the loss (version 1 again, a new id) is the one replica-a decides under at once; the lost lead lost-1 was assigned anew")
}

// durableConfig exercises every kind of state a Redis restart could lose:
// a rotation cursor, offers with accept deadlines, leads queued behind an
// away rep and behind a rep at max_open, a queue escalation timer, queue
// expiry timers, sticky owners with expiries.
const durableConfig = `
settings:
  max_queue_age: 1h
reps:
  - {id: r1}
  - {id: r2}
  - {id: r3}
  - {id: o1}
  - {id: o2}
  - {id: q1, initial_status: away}
  - {id: c1, max_open: 1}
  - {id: e1}
pools:
  - id: rotation
    accept_within: 0s
    members: [{rep_id: r1}, {rep_id: r2}, {rep_id: r3}]
  - id: offers
    accept_within: 5s
    max_missed_offers: 0
    members: [{rep_id: o1}, {rep_id: o2}]
  - id: parked            # its only rep is away: leads queue
    accept_within: 0s
    members: [{rep_id: q1}]
  - id: capped            # its only rep holds max_open leads: leads queue
    accept_within: 0s
    members: [{rep_id: c1}]
  - id: backup
    accept_within: 0s
    members: [{rep_id: e1}]
rules:
  - {id: rotation, match: {countries: [DE]}, targets: [{pool_id: rotation}]}
  - {id: offers, match: {countries: [FR]}, targets: [{pool_id: offers}]}
  - {id: parked, match: {countries: [US]}, targets: [{pool_id: parked}]}
  - {id: capped, match: {countries: [CA]}, targets: [{pool_id: capped}]}
  - {id: escalating, match: {countries: [GB]}, targets: [{pool_id: parked, wait: 6s}, {pool_id: backup}]}
`

// Deadlines of durableConfig, for the checks.
const (
	acceptWithin   = 5 * time.Second
	escalationWait = 6 * time.Second
)

// TestChaosRedisRestartAOF: Redis with appendonly yes and appendfsync
// always is killed (SIGKILL) and restarted on the same port and directory
// under a running leadrouterd; nothing is lost, and the pending deadlines
// still fire.
func TestChaosRedisRestartAOF(t *testing.T) {
	rs := startRedis(t, "--appendonly", "yes", "--appendfsync", "always")
	d := startDaemon(t, "leadrouterd", rs.URL)
	d.apply(t, durableConfig)

	leads := []*pb.Lead{
		{Id: "de-1", Country: "DE", Email: "de1@example.de"},
		{Id: "de-2", Country: "DE", Email: "de2@example.de"},
		{Id: "de-3", Country: "DE", Email: "de3@example.de"},
		{Id: "de-4", Country: "DE", Email: "de4@example.de"},
		{Id: "fr-1", Country: "FR"},
		{Id: "fr-2", Country: "FR"},
		{Id: "us-1", Country: "US"},
		{Id: "us-2", Country: "US"},
		{Id: "ca-1", Country: "CA"},
		{Id: "ca-2", Country: "CA"},
		{Id: "ca-3", Country: "CA"},
		{Id: "gb-1", Country: "GB"},
	}
	want := map[string]string{ // state:rep (or state:pool when queued) right after assigning
		"de-1": "ASSIGNED:r1", "de-2": "ASSIGNED:r2", "de-3": "ASSIGNED:r3", "de-4": "ASSIGNED:r1",
		"fr-1": "OFFERED:o1", "fr-2": "OFFERED:o2",
		"us-1": "QUEUED:parked", "us-2": "QUEUED:parked",
		"ca-1": "ASSIGNED:c1", "ca-2": "QUEUED:capped", "ca-3": "QUEUED:capped",
		"gb-1": "QUEUED:parked",
	}
	for _, l := range leads {
		a := d.assign(t, l).GetAssignment()
		if got := stateOf(a); got != want[l.GetId()] {
			t.Fatalf("lead %s: %s, want %s (%s)", l.GetId(), got, want[l.GetId()], a.GetReason())
		}
	}
	// What the service says, and what Redis holds, before the crash.
	before := map[string]*pb.Assignment{}
	for _, l := range leads {
		before[l.GetId()] = d.get(t, l.GetId())
	}
	repsBefore := d.listReps(t)
	nextDE, nextFR := preview(t, d, "DE"), preview(t, d, "FR")
	if nextDE != "r2" || nextFR != "o1" {
		t.Fatalf("before the crash the next picks are %s and %s, want r2 and o1", nextDE, nextFR)
	}
	snap := redisSnapshot(t, rs.URL)
	timersKey := fmt.Sprintf("%s:{%s}:timers", store.DefaultPrefix, ws)
	timers := zsetMembers(t, rs.URL, timersKey)
	for _, want := range []string{"offer|fr-1", "offer|fr-2", "escalate|gb-1", "expire|us-1", "expire|us-2", "expire|ca-2", "expire|ca-3"} {
		if !slices.Contains(timers, want) {
			t.Fatalf("before the crash, timer %s is not pending: %v", want, timers)
		}
	}

	// The crash: SIGKILL, no shutdown, then a restart on the same port
	// and directory, which replays the append-only file.
	rs.Kill(t)
	start := time.Now()
	rs.Start(t)
	t.Logf("measured: redis restarted (AOF replayed, answering PING) in %s", time.Since(start).Round(time.Millisecond))

	// Redis itself: every key as before, before leadrouterd touches it.
	after := redisSnapshot(t, rs.URL)
	if diff := diffSnapshots(snap, after); diff != "" {
		t.Fatalf("redis lost or changed data across the restart:\n  %s", diff)
	}
	t.Logf("checked: all %d keys of the store (records, counters, cursors, queues, %d pending timers, events, expiries) are identical after SIGKILL and restart", len(snap), len(timers))

	// The running leadrouterd serves again, and says what it said before.
	recovered := eventually(t, 15*time.Second, "GetAssignment after the Redis restart", func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err := d.routing.GetAssignment(ctx, &pb.GetAssignmentRequest{Workspace: ws, LeadId: "de-1"})
		return err == nil, fmt.Sprint(err)
	})
	t.Logf("measured: leadrouterd answered again %s after redis was back", recovered.Round(time.Millisecond))
	for _, l := range leads {
		if a := d.get(t, l.GetId()); !proto.Equal(a, before[l.GetId()]) {
			if due := before["fr-1"].GetOfferExpiresAt().AsTime(); time.Now().After(due) {
				t.Fatalf("too slow: the first offer deadline (%s after the offer) passed before the state after the restart could be compared", acceptWithin)
			}
			t.Fatalf("lead %s after the restart:\n%v\nbefore:\n%v", l.GetId(), a, before[l.GetId()])
		}
	}
	if repsAfter := d.listReps(t); !proto.Equal(&pb.ListRepsResponse{Reps: repsAfter}, &pb.ListRepsResponse{Reps: repsBefore}) {
		t.Fatalf("reps' state after the restart:\n%v\nbefore:\n%v", repsAfter, repsBefore)
	}
	if de, fr := preview(t, d, "DE"), preview(t, d, "FR"); de != nextDE || fr != nextFR {
		t.Fatalf("after the restart the next picks are %s and %s, want %s and %s as before", de, fr, nextDE, nextFR)
	}
	t.Logf("checked: through the same leadrouterd, all %d assignments (offers, queued leads included), every rep's counters and the next round-robin picks (%s, %s) are as before the crash", len(leads), nextDE, nextFR)

	// Queued leads still drain, in order: releasing c1's lead assigns the
	// first lead queued behind it.
	if _, err := d.admin.ReleaseAssignment(ctxT(t), &pb.ReleaseAssignmentRequest{Workspace: ws, LeadId: "ca-1", Reason: "chaos"}); err != nil {
		t.Fatalf("release ca-1: %v", err)
	}
	if got := stateOf(d.get(t, "ca-2")) + " " + stateOf(d.get(t, "ca-3")); got != "ASSIGNED:c1 QUEUED:capped" {
		t.Fatalf("after releasing ca-1: ca-2 and ca-3 are %s, want ASSIGNED:c1 QUEUED:capped", got)
	}
	t.Logf("checked: the queue kept its order: releasing ca-1 assigned ca-2 to c1, ca-3 still queued")

	// The offer deadlines set before the crash fire: each offer is
	// withdrawn and the lead offered to the other rep.
	for _, c := range []struct{ lead, from, to string }{{"fr-1", "o1", "o2"}, {"fr-2", "o2", "o1"}} {
		var a *pb.Assignment
		eventually(t, acceptWithin+10*time.Second, "offer of "+c.lead+" withdrawn at its deadline", func() (bool, string) {
			a = d.get(t, c.lead)
			return stateOf(a) == "OFFERED:"+c.to, fmt.Sprintf("%s, history %v", stateOf(a), kinds(a))
		})
		if got, want := kinds(a), []string{"received", "offered:" + c.from, "offer_expired:" + c.from, "offered:" + c.to}; !slices.Equal(got, want) {
			t.Fatalf("lead %s history %v, want %v", c.lead, got, want)
		}
		late := a.GetHistory()[2].GetAt().AsTime().Sub(before[c.lead].GetOfferExpiresAt().AsTime())
		t.Logf("measured: the offer of %s to %s was withdrawn %s after its deadline", c.lead, c.from, late.Round(time.Millisecond))
	}
	t.Logf("checked: the accept deadlines of the offers pending during the crash fired: fr-1 and fr-2 were withdrawn and offered to the other rep")

	// The escalation timer fires: gb-1 leaves the parked queue for backup.
	var gb *pb.Assignment
	eventually(t, escalationWait+10*time.Second, "escalation of gb-1", func() (bool, string) {
		gb = d.get(t, "gb-1")
		return stateOf(gb) == "ASSIGNED:e1", fmt.Sprintf("%s, history %v", stateOf(gb), kinds(gb))
	})
	if countKind(gb, "escalated") != 1 {
		t.Fatalf("gb-1 history %v, want one escalation", kinds(gb))
	}
	for _, h := range gb.GetHistory() {
		if h.GetKind() == "escalated" {
			late := h.GetAt().AsTime().Sub(gb.GetReceivedAt().AsTime().Add(escalationWait))
			t.Logf("measured: gb-1 escalated %s after its %s wait ran out", late.Round(time.Millisecond), escalationWait)
		}
	}

	// The parked leads are still queued, their expiry timers pending.
	for _, id := range []string{"us-1", "us-2", "ca-3"} {
		if got := stateOf(d.get(t, id)); !strings.HasPrefix(got, "QUEUED:") {
			t.Fatalf("lead %s is %s, want still queued", id, got)
		}
	}
	timers = zsetMembers(t, rs.URL, timersKey)
	for _, want := range []string{"expire|us-1", "expire|us-2", "expire|ca-3"} {
		if !slices.Contains(timers, want) {
			t.Fatalf("timer %s is gone: %v", want, timers)
		}
	}
	t.Logf("checked: the escalation timer of gb-1 fired (assigned to e1 via backup); us-1, us-2, ca-3 still queued with their max_queue_age timers pending")
	if log := d.log.String(); strings.Contains(log, "evicts keys") || strings.Contains(log, "keeps no append-only file") {
		t.Fatalf("leadrouterd warned about a durable Redis:\n%s", d.log.Tail(20))
	}
}

// stateOf sums an assignment up as "STATE:rep", or "STATE:pool" when no rep
// has it.
func stateOf(a *pb.Assignment) string {
	who := a.GetRepId()
	if who == "" {
		who = a.GetPoolId()
	}
	return strings.TrimPrefix(a.GetState().String(), "ASSIGNMENT_STATE_") + ":" + who
}

// preview returns the rep a new lead from the country would go to now.
func preview(t *testing.T, d *daemon, country string) string {
	t.Helper()
	resp, err := d.routing.PreviewAssignment(ctxT(t), &pb.PreviewAssignmentRequest{Workspace: ws,
		Lead: &pb.Lead{Id: "probe-" + country, Country: country}})
	if err != nil {
		t.Fatalf("preview %s: %v", country, err)
	}
	return resp.GetAssignment().GetRepId()
}

// TestChaosDurabilityWarnings: leadrouterd says at start when its Redis
// would lose data: a warning when it evicts keys (an evicted lead record
// lets a retried lead be assigned twice), a note when it keeps no
// append-only file; neither for a durable Redis.
func TestChaosDurabilityWarnings(t *testing.T) {
	const evicts, noAOF = "evicts keys", "keeps no append-only file"
	for _, c := range []struct {
		name      string
		redisArgs []string
		want      []string
		wantNot   []string
	}{
		{"evicting", []string{"--maxmemory", "100mb", "--maxmemory-policy", "allkeys-lru"}, []string{evicts}, nil},
		{"durable", []string{"--maxmemory", "100mb", "--maxmemory-policy", "noeviction", "--appendonly", "yes"}, nil, []string{evicts, noAOF}},
		{"no-aof", nil, []string{noAOF}, []string{evicts}},
	} {
		rs := startRedis(t, c.redisArgs...)
		d := startDaemon(t, "leadrouterd-"+c.name, rs.URL)
		d.kill() // its start-up log is complete once it serves
		log := d.log.String()
		for _, w := range c.want {
			if !strings.Contains(log, w) {
				t.Fatalf("redis %v: leadrouterd's log lacks %q:\n%s", c.redisArgs, w, log)
			}
		}
		for _, w := range c.wantNot {
			if strings.Contains(log, w) {
				t.Fatalf("redis %v: leadrouterd's log says %q:\n%s", c.redisArgs, w, log)
			}
		}
		t.Logf("checked: redis %s %v: leadrouterd's start-up log has %q and not %q", c.name, c.redisArgs, c.want, c.wantNot)
	}
}

// errStopped ends a load worker when its test is ending.
var errStopped = errors.New("the test is ending")

// TestChaosReplicaKilled: three replicas share one Redis; 16 clients assign
// 3,000 leads round-robin over them, each call with a 2s deadline, retrying
// a failed call with the same lead id on the next replica. A third of the
// way through, one replica is killed with SIGKILL (calls in flight on it
// die with it), then restarted. Every lead ends with exactly one assignment
// and the store's per-rep counters equal the records.
func TestChaosReplicaKilled(t *testing.T) {
	const (
		leads    = 3000
		workers  = 16
		victim   = 1
		callTime = 2 * time.Second
	)
	rs := startRedis(t)
	replicas := []*daemon{
		startDaemon(t, "replica-0", rs.URL),
		startDaemon(t, "replica-1", rs.URL),
		startDaemon(t, "replica-2", rs.URL),
	}
	replicas[0].apply(t, `
reps: [{id: a}, {id: b}, {id: c}, {id: d}, {id: e}, {id: f}, {id: g}]
pools:
  - id: team
    accept_within: 0s
    members: [{rep_id: a}, {rep_id: b}, {rep_id: c}, {rep_id: d}, {rep_id: e}, {rep_id: f}, {rep_id: g}]
rules: [{id: all, targets: [{pool_id: team}]}]
`)

	type result struct {
		rep       string
		duplicate bool // the reply was a repeat: an earlier, failed attempt had committed
		attempts  int
	}
	var (
		results  = make([]result, leads)
		finished atomic.Int64
		inFlight [3]atomic.Int64 // calls in flight per replica
		served   [3]atomic.Int64 // successful calls per replica
		mu       sync.Mutex
		failures = map[string]int{} // "replica code" -> failed calls
		stopped  atomic.Bool        // the test is ending: workers return
		giveUp   = time.Now().Add(90 * time.Second)
	)
	load := parallel.Go(workers, leads, func(i int) error {
		req := &pb.AssignLeadRequest{Workspace: ws, Lead: &pb.Lead{Id: fmt.Sprintf("lead-%04d", i), Country: "US"}}
		r := i % len(replicas)
		for attempt := 1; ; attempt++ {
			if stopped.Load() {
				return errStopped
			}
			ctx, cancel := context.WithTimeout(context.Background(), callTime)
			inFlight[r].Add(1)
			resp, err := replicas[r].routing.AssignLead(ctx, req)
			inFlight[r].Add(-1)
			cancel()
			if err == nil {
				a := resp.GetAssignment()
				if a.GetState() != pb.AssignmentState_ASSIGNMENT_STATE_ASSIGNED || a.GetRepId() == "" {
					t.Errorf("lead %s: %v", req.Lead.Id, a)
				}
				if resp.GetDuplicate() && attempt == 1 {
					t.Errorf("lead %s: a new lead id answered as a duplicate on the first attempt", req.Lead.Id)
				}
				served[r].Add(1)
				results[i] = result{rep: a.GetRepId(), duplicate: resp.GetDuplicate(), attempts: attempt}
				break
			}
			mu.Lock()
			failures[fmt.Sprintf("%s %s", replicas[r].name, codeOf(err))]++
			mu.Unlock()
			if time.Now().After(giveUp) {
				return fmt.Errorf("lead %s: still failing after %d attempts: %v", req.Lead.Id, attempt, err)
			}
			r = (r + 1) % len(replicas) // the same lead id, on the next replica
			if attempt%len(replicas) == 0 {
				time.Sleep(20 * time.Millisecond) // every replica failed: do not spin
			}
		}
		finished.Add(1)
		return nil
	})
	// However the test ends, no worker outlives it, and a worker's error
	// is reported even when the test stops before the load is done.
	waited := false
	defer func() {
		if waited {
			return
		}
		stopped.Store(true)
		for _, err := range load.Wait() {
			if !errors.Is(err, errStopped) {
				t.Error(err)
			}
		}
	}()
	// Kill the victim a third of the way through, restart it at half way.
	waitLoad := func(n int64) {
		t.Helper()
		eventually(t, 60*time.Second, fmt.Sprintf("%d leads assigned", n), func() (bool, string) {
			return finished.Load() >= n, fmt.Sprintf("%d done", finished.Load())
		})
	}
	waitLoad(leads / 3)
	killedAt, inFlightAtKill := finished.Load(), inFlight[victim].Load()
	replicas[victim].kill()
	t.Logf("killed %s (SIGKILL) after %d of %d leads, %d calls in flight on it", replicas[victim].name, killedAt, leads, inFlightAtKill)
	waitLoad(leads / 2)
	restartAt := finished.Load()
	start := time.Now()
	replicas[victim].start()
	servedBefore := served[victim].Load()
	t.Logf("measured: %s restarted and SERVING in %s (at lead %d)", replicas[victim].name, time.Since(start).Round(time.Millisecond), restartAt)
	waited = true
	for _, err := range load.Wait() {
		t.Error(err)
	}
	if t.Failed() {
		t.FailNow()
	}
	if killedAt >= leads {
		t.Fatalf("the load was over before the kill: nothing was tested")
	}
	t.Logf("load: %d leads; failed calls by replica and code: %v; calls served: %d %d %d (%d by %s after its restart)", leads, failures,
		served[0].Load(), served[1].Load(), served[2].Load(), served[victim].Load()-servedBefore, replicas[victim].name)

	// Every lead, from the store: one assignment, to the rep the client
	// was told, assigned exactly once.
	perRep := map[string]int{}
	retried, repeats := 0, 0
	var check sync.WaitGroup
	var checkMu sync.Mutex
	ids := make(chan int)
	for w := range 8 {
		check.Add(1)
		go func() {
			defer check.Done()
			d := replicas[w%len(replicas)]
			for i := range ids {
				id := fmt.Sprintf("lead-%04d", i)
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				resp, err := d.routing.GetAssignment(ctx, &pb.GetAssignmentRequest{Workspace: ws, LeadId: id})
				cancel()
				if err != nil {
					t.Errorf("get %s through %s: %v", id, d.name, err)
					continue
				}
				a := resp.GetAssignment()
				if a.GetState() != pb.AssignmentState_ASSIGNMENT_STATE_ASSIGNED || a.GetRepId() != results[i].rep ||
					countKind(a, "assigned") != 1 || countKind(a, "offered") != 0 || len(a.GetHistory()) != 2 {
					t.Errorf("lead %s: %s history %v; the client was told %q", id, stateOf(a), kinds(a), results[i].rep)
					continue
				}
				checkMu.Lock()
				perRep[a.GetRepId()]++
				checkMu.Unlock()
			}
		}()
	}
	for i := range leads {
		ids <- i
		if results[i].attempts > 1 {
			retried++
		}
		if results[i].duplicate {
			repeats++
		}
	}
	close(ids)
	check.Wait()
	if t.Failed() {
		t.FailNow()
	}
	totals := replicas[victim].assignedTotals(t) // through the restarted replica
	sum := 0
	for rep, n := range totals {
		sum += n
		if n != perRep[rep] {
			t.Errorf("rep %s: the store counts %d assignments, the lead records %d", rep, n, perRep[rep])
		}
	}
	if sum != leads {
		t.Fatalf("the store counts %d assignments for %d leads", sum, leads)
	}
	t.Logf("checked: %d leads, %d of them retried on another replica (%d retries found the assignment an earlier, failed attempt had committed): every lead has exactly one assignment (state assigned, one 'assigned' history entry, the rep the client was told)", leads, retried, repeats)
	t.Logf("checked: the store's assigned_total per rep %v equals the counts from the lead records and sums to %d", totals, leads)
}

// TestChaosClientCancels: against a real leadrouterd, AssignLead calls are
// cancelled (or time out) at random points, from before the request leaves
// to after the script ran; some run to completion. No lead is ever half
// written, the counters equal the leads recorded, and retrying every id
// completes the rest with each lead assigned once.
func TestChaosClientCancels(t *testing.T) {
	rs := startRedis(t)
	d := startDaemon(t, "leadrouterd", rs.URL)
	d.apply(t, teamConfig)
	const (
		n       = 600
		workers = 8
	)
	outcome := make([]codes.Code, n)
	parallel.Each(workers, n, func(i int) error {
		// After 0 to ~5 ms, spread evenly: before the request is
		// sent, while the script runs, after it ran. One in 40
		// gets 10 s, so some complete however slow the machine.
		after := time.Duration(i%40) * 125 * time.Microsecond
		if i%40 == 39 {
			after = 10 * time.Second
		}
		// Even leads: the client cancels (the server learns it
		// mid-call). Odd: a deadline, which the server knows
		// from the start.
		var ctx context.Context
		var cancel context.CancelFunc
		if i%2 == 0 {
			ctx, cancel = context.WithCancel(context.Background())
			time.AfterFunc(after, cancel)
		} else {
			ctx, cancel = context.WithTimeout(context.Background(), after)
		}
		_, err := d.routing.AssignLead(ctx, &pb.AssignLeadRequest{Workspace: ws, Lead: &pb.Lead{Id: fmt.Sprint("c", i), Country: "DE"}})
		cancel() // a pending AfterFunc then cancels a finished context: harmless
		outcome[i] = codeOf(err)
		return nil
	})

	found, ok, gaveUp := 0, 0, 0
	byCode := map[codes.Code]int{}
	reps := make([]string, n)
	for i := range n {
		id := fmt.Sprint("c", i)
		byCode[outcome[i]]++
		if outcome[i] == codes.OK {
			ok++
		}
		if i%40 == 39 && outcome[i] != codes.OK {
			t.Errorf("lead %s with a 10s deadline: %s, want OK", id, outcome[i])
		}
		resp, err := d.routing.GetAssignment(ctxT(t), &pb.GetAssignmentRequest{Workspace: ws, LeadId: id})
		switch {
		case codeOf(err) == codes.NotFound:
			if outcome[i] == codes.OK {
				t.Errorf("lead %s: AssignLead succeeded but the lead is not found", id)
			}
		case err != nil:
			t.Fatalf("get %s: %v", id, err)
		default:
			a := resp.GetAssignment()
			if a.GetState() != pb.AssignmentState_ASSIGNMENT_STATE_ASSIGNED || a.GetRepId() == "" || countKind(a, "assigned") != 1 {
				t.Fatalf("lead %s half-written: %s history %v", id, stateOf(a), kinds(a))
			}
			reps[i] = a.GetRepId()
			found++
			if outcome[i] != codes.OK {
				gaveUp++
			}
		}
	}
	counted := 0
	for _, v := range d.assignedTotals(t) {
		counted += v
	}
	if counted != found || found == 0 || found == n {
		t.Fatalf("the reps' counters say %d assignments, %d leads are recorded (want equal, and some but not all of %d)", counted, found, n)
	}
	t.Logf("client outcomes: %v", byCode)
	// A call whose own deadline runs out while its script runs is a
	// timeout, not a Redis error: Redis is healthy, so the
	// LeadrouterRedisErrors alert must stay quiet.
	if errs := d.metric(t, "leadrouter_redis_errors_total"); errs != 0 {
		t.Errorf("leadrouter_redis_errors_total is %v after clients gave up on a healthy Redis, want 0", errs)
	}
	t.Logf("checked: leadrouter_redis_errors_total stays 0; leadrouter_redis_timeouts_total counts %v calls that ran out of time (health pings among them: %v)",
		d.metric(t, "leadrouter_redis_timeouts_total"), d.metric(t, `leadrouter_redis_timeouts_total{op="ping"}`))
	t.Logf("checked: %d AssignLead calls cancelled or timed out at 0-5ms (some at 10s): %d leads recorded (%d of them although the client gave up), %d absent, none half-written; the reps' counters sum to %d = the leads recorded", n, found, gaveUp, n-found, counted)

	// Retrying every id completes the rest; recorded leads come back as
	// the original assignment.
	perRep := map[string]int{}
	for i := range n {
		id := fmt.Sprint("c", i)
		resp := d.assign(t, &pb.Lead{Id: id, Country: "DE"})
		a := resp.GetAssignment()
		if reps[i] != "" && (!resp.GetDuplicate() || a.GetRepId() != reps[i]) {
			t.Fatalf("lead %s resent: duplicate %v rep %s, want the original assignment to %s", id, resp.GetDuplicate(), a.GetRepId(), reps[i])
		}
		if reps[i] == "" && resp.GetDuplicate() {
			t.Fatalf("lead %s was not recorded, but its retry is a duplicate", id)
		}
		perRep[a.GetRepId()]++
	}
	totals := d.assignedTotals(t)
	for rep, v := range totals {
		if v != perRep[rep] {
			t.Fatalf("after the retries rep %s: the store counts %d, the replies %d", rep, v, perRep[rep])
		}
	}
	t.Logf("checked: retrying all %d ids returned the original assignment for the %d recorded and assigned the %d others once; the counters %v match", n, found, n-found, totals)
}

// TestChaosReplicaKilledHoldingTimerClaims: three replicas; 2,000 offers of
// 10 s (firing them all takes the lone sweeper about a second). Two replicas are frozen (SIGSTOP) so the third alone claims the due
// timers; it is killed (SIGKILL) the moment it holds claims on timers it
// has not fired yet, and the other two are thawed. Its claims run out
// (3 s) and the others fire those timers: every offer is withdrawn exactly
// once and its lead assigned to the fallback rep.
func TestChaosReplicaKilledHoldingTimerClaims(t *testing.T) {
	const leads = 2000
	rs := startRedis(t)
	replicas := []*daemon{
		startDaemon(t, "replica-0", rs.URL),
		startDaemon(t, "victim", rs.URL),
		startDaemon(t, "replica-2", rs.URL),
	}
	victim := replicas[1]
	victim.apply(t, `
reps: [{id: a}, {id: b}]
pools:
  - {id: offer, accept_within: 10s, max_missed_offers: 0, members: [{rep_id: a}]}
  - {id: direct, accept_within: 0s, members: [{rep_id: b}]}
rules: [{id: all, targets: [{pool_id: offer}, {pool_id: direct}]}]
`)
	freeze := func(d *daemon, sig syscall.Signal) {
		d.mu.Lock()
		defer d.mu.Unlock()
		if err := d.cmd.Process.Signal(sig); err != nil {
			t.Fatal(err)
		}
	}
	freeze(replicas[0], syscall.SIGSTOP)
	freeze(replicas[2], syscall.SIGSTOP)
	thawed := false
	thaw := func() {
		if !thawed {
			freeze(replicas[0], syscall.SIGCONT)
			freeze(replicas[2], syscall.SIGCONT)
			thawed = true
		}
	}
	defer thaw()
	for _, err := range parallel.Each(16, leads, func(i int) error {
		if a := victim.assign(t, &pb.Lead{Id: fmt.Sprintf("lead-%04d", i)}).GetAssignment(); a.GetState() != pb.AssignmentState_ASSIGNMENT_STATE_OFFERED {
			return fmt.Errorf("lead %d: %v, want an offer", i, a.GetState())
		}
		return nil
	}) {
		t.Fatal(err)
	}
	rdb := redisClient(t, rs.URL)
	timers, claims := "lr:{"+ws+"}:timers", "lr:{"+ws+"}:timer_claims"
	// claimedUnfired counts due timers still in the set under a live claim.
	claimedUnfired := func() int {
		now := time.Now().UnixMilli()
		due, err := rdb.ZRangeByScoreWithScores(ctxT(t), timers, &redis.ZRangeBy{Min: "-inf", Max: fmt.Sprint(now)}).Result()
		if err != nil {
			t.Fatal(err)
		}
		pipe := rdb.Pipeline()
		scores := make([]*redis.FloatCmd, len(due))
		for i, z := range due {
			scores[i] = pipe.ZScore(ctxT(t), claims, fmt.Sprintf("%s@%d", z.Member, int64(z.Score)))
		}
		_, _ = pipe.Exec(ctxT(t))
		n := 0
		for _, c := range scores {
			if exp, err := c.Result(); err == nil && int64(exp) > now {
				n++
			}
		}
		return n
	}
	// The first claim, polled every millisecond: the victim is then at the
	// start of about a second of firing.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(time.Millisecond) {
		if n, _ := rdb.ZCard(ctxT(t), claims).Result(); n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the victim never claimed a timer")
		}
	}
	victim.kill()
	killed := time.Now()
	held := claimedUnfired()
	thaw()
	if held == 0 {
		t.Fatalf("the victim held no claim on an unfired timer when it was killed: nothing was tested")
	}
	t.Logf("killed the victim (SIGKILL) holding claims on %d due timers it had not fired", held)
	eventually(t, 30*time.Second, "every offer withdrawn", func() (bool, string) {
		n, _ := rdb.ZCard(ctxT(t), timers).Result()
		return n == 0, fmt.Sprintf("%d timers left", n)
	})
	t.Logf("measured: the last timer fired within %s of the kill (claims last 3 s; polled every 20 ms)", time.Since(killed).Round(100*time.Millisecond))
	for i := 0; i < leads; i++ {
		a := replicas[0].get(t, fmt.Sprintf("lead-%04d", i))
		if a.GetState() != pb.AssignmentState_ASSIGNMENT_STATE_ASSIGNED || a.GetRepId() != "b" || countKind(a, "offer_expired") != 1 {
			t.Errorf("lead-%04d: %s to %s, history %v", i, stateOf(a), a.GetRepId(), kinds(a))
		}
	}
}
