package chaos

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	pb "github.com/leadrouter/leadrouter/gen/leadrouter/v1"
	"github.com/leadrouter/leadrouter/store"
)

// TestChaosRedisOlderSnapshot: Redis comes back from an older snapshot
// (an RDB taken before the last leads, as a restore from backup or a
// restart without the AOF would) under traffic from two replicas. The
// event epoch was in the snapshot, so it survived: only the lost events
// tell. A stream that had sent a lost event ends, and resuming from it
// answers RESET, on either replica; the replicas count the regression;
// and every lead id acknowledged before the loss, sent again, ends with
// exactly one assignment, whatever the copy kept.
func TestChaosRedisOlderSnapshot(t *testing.T) {
	rs := startRedis(t, "--appendonly", "no", "--save", "")
	a := startDaemon(t, "replica-a", rs.URL)
	b := startDaemon(t, "replica-b", rs.URL)
	a.apply(t, teamConfig)
	replicas := []*daemon{a, b}

	// A dashboard's stream on replica-a, live from the start: the epoch
	// exists before the snapshot.
	sctx, stopStream := context.WithCancel(context.Background())
	defer stopStream()
	stream, err := pb.NewEventServiceClient(a.conn).WatchEvents(sctx, &pb.WatchEventsRequest{Workspace: ws})
	if err != nil {
		t.Fatal(err)
	}
	hdr, err := stream.Header()
	if err != nil {
		t.Fatal(err)
	}
	epoch := hdr.Get("leadrouter-epoch")[0]
	type received struct {
		last  *pb.Position
		ended error
	}
	var mu sync.Mutex
	var got received
	streamDone := make(chan struct{})
	go func() {
		defer close(streamDone)
		for {
			r, err := stream.Recv()
			mu.Lock()
			if err != nil {
				got.ended = err
				mu.Unlock()
				return
			}
			got.last = r.GetEvent().GetPosition()
			mu.Unlock()
		}
	}()

	acked := map[string]string{} // lead -> rep answered
	var ackMu sync.Mutex
	send := func(d *daemon, id string) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		r, err := d.routing.AssignLead(ctx, &pb.AssignLeadRequest{Workspace: ws, Lead: &pb.Lead{Id: id, Country: "DE"}})
		if err == nil {
			ackMu.Lock()
			acked[id] = r.GetAssignment().GetRepId()
			ackMu.Unlock()
		}
	}
	for i := range 20 {
		send(replicas[i%2], fmt.Sprint("kept-", i))
	}
	if len(acked) != 20 {
		t.Fatalf("%d of 20 leads acknowledged before the snapshot", len(acked))
	}
	rc := redisClient(t, rs.URL)
	if err := rc.Save(ctxT(t)).Err(); err != nil {
		t.Fatal(err)
	}
	older, err := os.ReadFile(filepath.Join(rs.Dir, "dump.rdb"))
	if err != nil {
		t.Fatal(err)
	}

	// Traffic after the snapshot, until the restore: what it writes is lost.
	traffic := func(prefix string, n int) {
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < n; i += 4 {
					send(replicas[i%2], fmt.Sprint(prefix, i))
				}
			}()
		}
		wg.Wait()
	}
	traffic("lost-", 80)
	events := store.DefaultPrefix + ":{" + ws + "}:events"
	head := rc.XRevRangeN(ctxT(t), events, "+", "-", 1).Val()[0].ID
	eventually(t, 10*time.Second, "the stream to receive every event through "+head, func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		return got.last.GetOffset() == head, fmt.Sprint(got.last)
	})
	mu.Lock()
	lostPosition := got.last
	mu.Unlock()
	t.Logf("snapshot taken after 20 leads; %d leads acknowledged in all; the stream received through %s", len(acked), lostPosition.GetOffset())

	// The restore: Redis restarts from the older snapshot, and traffic
	// goes on under it, its events numbered past the lost ones.
	rs.Kill(t)
	if err := os.WriteFile(filepath.Join(rs.Dir, "dump.rdb"), older, 0o644); err != nil {
		t.Fatal(err)
	}
	rs.Start(t)
	for _, d := range replicas {
		d.waitHealth(healthpb.HealthCheckResponse_SERVING, 20*time.Second)
	}
	if got := rc.Get(ctxT(t), store.DefaultPrefix+":{"+ws+"}:events_epoch").Val(); got != epoch {
		t.Fatalf("epoch after the restore %q, want the snapshot's %q (survived)", got, epoch)
	}
	traffic("after-", 20)

	// The live stream ends: its check finds the lost event gone.
	select {
	case <-streamDone:
	case <-time.After(20 * time.Second):
		t.Fatal("the stream that sent lost events still runs 20 s after the restore")
	}
	mu.Lock()
	if codeOf(got.ended) != codes.Unavailable {
		t.Fatalf("the stream ended with %v, want UNAVAILABLE", got.ended)
	}
	mu.Unlock()
	// Resuming from the last position received answers RESET, on either
	// replica.
	for _, d := range replicas {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		s, err := pb.NewEventServiceClient(d.conn).WatchEvents(ctx, &pb.WatchEventsRequest{Workspace: ws, ResumeFrom: lostPosition})
		if err != nil {
			t.Fatal(err)
		}
		r, err := s.Recv()
		cancel()
		if err != nil || r.GetEvent().GetKind() != pb.EventKind_EVENT_KIND_RESET {
			t.Fatalf("%s: resume from %s after the restore: %v %v, want RESET", d.name, lostPosition.GetOffset(), r, err)
		}
	}
	if n := a.metric(t, "leadrouter_store_regressions_total") + b.metric(t, "leadrouter_store_regressions_total"); n < 3 {
		t.Fatalf("store regressions counted %v, want at least 3 (the live check, two resumes)", n)
	}

	// Every lead acknowledged, sent again (twice, through both replicas),
	// has exactly one assignment; those the snapshot kept keep their rep.
	ids := make([]string, 0, len(acked))
	for id := range acked {
		ids = append(ids, id)
	}
	counted := map[string]int{}
	relost := 0
	for _, id := range ids {
		first := a.assign(t, &pb.Lead{Id: id, Country: "DE"})
		again := b.assign(t, &pb.Lead{Id: id, Country: "DE"})
		if !again.GetDuplicate() || again.GetAssignment().GetRepId() != first.GetAssignment().GetRepId() {
			t.Fatalf("lead %s sent twice after the restore: %s then %s (duplicate %v)", id,
				stateOf(first.GetAssignment()), stateOf(again.GetAssignment()), again.GetDuplicate())
		}
		rec := a.get(t, id)
		if n := countKind(rec, "assigned"); n != 1 {
			t.Fatalf("lead %s: %d assignments in its history %v", id, n, kinds(rec))
		}
		if !first.GetDuplicate() {
			relost++
		} else if first.GetAssignment().GetRepId() != acked[id] && len(id) > 5 && id[:5] == "kept-" {
			t.Fatalf("lead %s kept by the snapshot: rep %s, acknowledged %s", id, first.GetAssignment().GetRepId(), acked[id])
		}
		counted[rec.GetRepId()]++
	}
	if relost == 0 {
		t.Fatal("no lead was lost: the restore did not go back")
	}
	totals := a.assignedTotals(t)
	for rep, n := range counted {
		if totals[rep] != n {
			t.Fatalf("rep %s: the store counts %d assignments, the records %d (%v)", rep, totals[rep], n, totals)
		}
	}
	t.Logf("checked: %d leads acknowledged, %d lost by the restore and assigned once when sent again, every other one a duplicate of its kept record; streams RESET; counters %v match the records", len(ids), relost, totals)
}
