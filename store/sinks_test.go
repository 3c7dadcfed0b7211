package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/leadrouter/leadrouter/engine"
	"github.com/leadrouter/leadrouter/internal/redistest"
)

// TestSinkOrderPerLead: two consumers of one sink's group read a stream
// with two events of lead a between events of other leads. Only the head
// of each lead is handed out to deliver; the second event of a waits,
// even though another consumer read it, until the first is acknowledged,
// and then goes to the consumer that acknowledged the first. Unwanted
// kinds are acknowledged at once; the length limit of retention does not
// trim past an unacknowledged event, the age limit does and counts the
// loss; a removed sink's group goes.
func TestSinkOrderPerLead(t *testing.T) {
	for _, b := range redistest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			st := b.Open(t)
			ctx := context.Background()
			ws := redistest.Workspace(t)
			events := st.Prefix() + ":{" + ws + "}:events"
			add := func(id, kind, lead string) {
				t.Helper()
				if err := st.Client().XAdd(ctx, &redis.XAddArgs{Stream: events, ID: id,
					Values: []any{"kind", kind, "lead", lead, "rep", "r1", "pool", "p", "at", "1000", "detail", ""}}).Err(); err != nil {
					t.Fatal(err)
				}
			}
			add("1000-1", "offered", "z") // before the group: not delivered
			kinds := []engine.EventKind{engine.EventOffered, engine.EventAccepted}
			got, _, err := st.ReadSink(ctx, ws, "crm", "c1", kinds, "1000-1", 10)
			if err != nil || len(got) != 0 {
				t.Fatalf("first read: %v, %v", got, err)
			}
			add("2000-1", "offered", "a")
			add("2000-2", "offered", "b")
			add("2000-3", "queued", "c") // unwanted: acknowledged at once
			add("2000-4", "accepted", "a")
			add("2000-5", "offered", "d")

			ids := func(ds []engine.SinkDelivery) []string {
				var out []string
				for _, d := range ds {
					out = append(out, d.Event.ID+"/"+d.Key)
				}
				return out
			}
			c1, _, err := st.ReadSink(ctx, ws, "crm", "c1", kinds, "0-0", 2)
			if err != nil || fmt.Sprint(ids(c1)) != "[2000-1/a 2000-2/b]" {
				t.Fatalf("c1 read %v, %v", ids(c1), err)
			}
			c2, read, err := st.ReadSink(ctx, ws, "crm", "c2", kinds, "0-0", 10)
			if err != nil || fmt.Sprint(ids(c2)) != "[2000-5/d]" || read != 3 {
				t.Fatalf("c2 read %v, %v; want only d (a's second event waits, c's is unwanted)", ids(c2), err)
			}
			state, err := st.SinkState(ctx, ws, "crm")
			if err != nil || state.Pending != 4 || !state.Oldest.Equal(time.UnixMilli(2000)) {
				t.Fatalf("state %+v, %v; want 4 pending from 2000", state, err)
			}

			// Retention's length limit (1 event) stops at a's first event.
			if n, losses, err := st.TrimEventsFor(ctx, ws, 1, 24*time.Hour, time.UnixMilli(3000), []string{"crm"}); err != nil || n != 1 || len(losses) != 0 {
				t.Fatalf("trim: %d, %v, %v; want only 1000-1 removed", n, losses, err)
			}
			if first := st.Client().XRangeN(ctx, events, "-", "+", 1).Val(); first[0].ID != "2000-1" {
				t.Fatalf("oldest kept %s, want 2000-1", first[0].ID)
			}

			// c1 finishes a's first event: a's second comes back to c1.
			next, err := st.AckSink(ctx, ws, "crm", "c1", c1[0], nil)
			if err != nil || next == nil || next.Event.ID != "2000-4" || next.Event.Kind != engine.EventAccepted {
				t.Fatalf("ack a#1: %+v, %v; want 2000-4 next", next, err)
			}
			// Acknowledging again (a redelivery's second finish) is harmless.
			if again, err := st.AckSink(ctx, ws, "crm", "c1", c1[0], nil); err != nil || again != nil {
				t.Fatalf("second ack: %+v, %v", again, err)
			}
			// b is dead-lettered; a#2 and d delivered.
			if _, err := st.AckSink(ctx, ws, "crm", "c1", c1[1], &engine.DeadLetter{Event: c1[1].Event, Reason: "HTTP 410", At: time.UnixMilli(2500)}); err != nil {
				t.Fatal(err)
			}
			// Only the consumer holding an event finishes it: c1 cannot
			// acknowledge c2's d.
			if _, err := st.AckSink(ctx, ws, "crm", "c1", c2[0], nil); err != nil {
				t.Fatal(err)
			}
			if st, _ := st.SinkState(ctx, ws, "crm"); st.Pending != 2 {
				t.Fatalf("c1 finished c2's event: %+v", st)
			}
			for c, d := range map[string]engine.SinkDelivery{"c1": *next, "c2": c2[0]} {
				if n, err := st.AckSink(ctx, ws, "crm", c, d, nil); err != nil || n != nil {
					t.Fatalf("ack %s: %v, %v", d.Event.ID, n, err)
				}
			}
			state, err = st.SinkState(ctx, ws, "crm")
			if err != nil || state.Pending != 0 || state.DeadLetters != 1 {
				t.Fatalf("state after acks %+v, %v", state, err)
			}
			// Now the length limit trims to the newest event.
			if n, _, err := st.TrimEventsFor(ctx, ws, 1, 24*time.Hour, time.UnixMilli(3000), []string{"crm"}); err != nil || n != 4 {
				t.Fatalf("trim after acks: %d, %v; want 4", n, err)
			}

			// Replay: the dead letter comes back, leased.
			if n, err := st.ReplayDeadLetters(ctx, ws, "crm", 100); err != nil || n != 1 {
				t.Fatalf("replay: %d, %v", n, err)
			}
			taken, err := st.TakeReplays(ctx, ws, "crm", time.UnixMilli(4000), time.Minute, 10)
			if err != nil || len(taken) != 1 || taken[0].Letter.Event.ID != "2000-2" || taken[0].Letter.Reason != "HTTP 410" {
				t.Fatalf("take: %+v, %v", taken, err)
			}
			if again, _ := st.TakeReplays(ctx, ws, "crm", time.UnixMilli(4000), time.Minute, 10); len(again) != 0 {
				t.Fatalf("a leased letter taken twice: %+v", again)
			}
			if err := st.ReplayDone(ctx, ws, "crm", taken[0], nil); err != nil {
				t.Fatal(err)
			}
			if state, _ = st.SinkState(ctx, ws, "crm"); state.DeadLetters != 0 || state.Replaying != 0 {
				t.Fatalf("after replay %+v", state)
			}

			// The age limit does not wait: an event read and not delivered
			// is lost, counted, and its lead's next event becomes the head.
			add("5000-1", "offered", "e")
			add("5000-2", "accepted", "e")
			add("9000-1", "offered", "f")
			got, _, _ = st.ReadSink(ctx, ws, "crm", "c1", kinds, "0-0", 10)
			if fmt.Sprint(ids(got)) != "[5000-1/e 9000-1/f]" {
				t.Fatalf("read %v", ids(got))
			}
			_, losses, err := st.TrimEventsFor(ctx, ws, 100, time.Second, time.UnixMilli(6001), []string{"crm"})
			if err != nil || fmt.Sprint(losses) != "[{crm 2}]" {
				t.Fatalf("age trim losses %v, %v; want both e events", losses, err)
			}
			if state, _ = st.SinkState(ctx, ws, "crm"); state.Lost != 2 || state.LaggingSince.IsZero() || state.Pending != 1 {
				t.Fatalf("after loss %+v", state)
			}

			// Takeover: c2 claims f from c1 once it has been idle.
			time.Sleep(20 * time.Millisecond)
			claimed, _, err := st.ClaimSink(ctx, ws, "crm", "c2", 10*time.Millisecond, "0-0", 10)
			if err != nil || fmt.Sprint(ids(claimed)) != "[9000-1/f]" {
				t.Fatalf("claim %v, %v", ids(claimed), err)
			}

			groups, err := st.SinkGroups(ctx, ws)
			if err != nil || fmt.Sprint(groups) != "[crm]" {
				t.Fatalf("groups %v, %v", groups, err)
			}
			if err := st.RemoveSink(ctx, ws, "crm"); err != nil {
				t.Fatal(err)
			}
			if groups, _ = st.SinkGroups(ctx, ws); len(groups) != 0 {
				t.Fatalf("groups after remove %v", groups)
			}
			if n := st.Client().Exists(ctx, st.Prefix()+":{"+ws+"}:sink_heads:crm", st.Prefix()+":{"+ws+"}:sink_state:crm").Val(); n != 0 {
				t.Fatalf("%d sink keys left", n)
			}
		})
	}
}
