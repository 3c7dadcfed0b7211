package server_test

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc/codes"

	"github.com/leadrouter/leadrouter/engine"
	pb "github.com/leadrouter/leadrouter/gen/leadrouter/v1"
	"github.com/leadrouter/leadrouter/internal/redistest"
	"github.com/leadrouter/leadrouter/metrics"
	"github.com/leadrouter/leadrouter/server"
)

// TestStreamAndGRPCMetrics: open streams are counted while they are open,
// live events are timed from production to sending, and the standard gRPC
// server metrics count calls by method and code.
func TestStreamAndGRPCMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg, metrics.Options{})
	st := redistest.RealStore(t)
	in := startWith(t, st, server.Options{Metrics: m}, engine.WithObserver(m))
	ws := redistest.Workspace(t)
	in.applyYAML(t, ws, watchConfig)
	subscribers := func(stream string) float64 {
		return seriesValue(t, reg, "leadrouter_stream_subscribers", map[string]string{"stream": stream})
	}

	next, cancel := watch(t, in, ws, nil)
	if got := subscribers(metrics.StreamEvents); got != 1 {
		t.Fatalf("stream_subscribers{events} = %v with one dashboard open, want 1", got)
	}
	produce(t, in, ws, 10, 0)
	for i := 0; i < 10; i++ {
		if _, err := next(); err != nil {
			t.Fatal(err)
		}
	}
	cancel()
	deadline := time.Now().Add(5 * time.Second)
	for subscribers(metrics.StreamEvents) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("stream_subscribers{events} = %v after the client left, want 0", subscribers(metrics.StreamEvents))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := testutil.CollectAndCount(reg, "leadrouter_event_delivery_seconds"); n != 1 {
		t.Fatalf("event_delivery_seconds series = %d, want 1", n)
	}
	if got := seriesValue(t, reg, "leadrouter_event_delivery_seconds", nil); got != 10 {
		t.Errorf("event_delivery_seconds count = %v, want 10 (one per live event sent)", got)
	}

	if _, err := in.routing.AssignLead(ctxT(t), &pb.AssignLeadRequest{Workspace: ws, Lead: &pb.Lead{Id: "x"}}); err != nil {
		t.Fatal(err)
	}
	_, err := in.routing.AssignLead(ctxT(t), &pb.AssignLeadRequest{Workspace: ws, Lead: &pb.Lead{}})
	wantCode(t, err, codes.InvalidArgument)
	for _, c := range []struct {
		code string
		want float64
	}{{"OK", 1}, {"InvalidArgument", 1}} {
		v := seriesValue(t, reg, "grpc_server_handled_total", map[string]string{
			"grpc_method": "AssignLead", "grpc_service": "leadrouter.v1.RoutingService", "grpc_code": c.code})
		if v != c.want {
			t.Errorf("grpc_server_handled_total{AssignLead,%s} = %v, want %v", c.code, v, c.want)
		}
	}
}

// seriesValue returns the value of the series of family name having the
// given labels (others ignored): a counter's or gauge's value, a
// histogram's sample count; -1 when there is none.
func seriesValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	metric:
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if v, ok := labels[l.GetName()]; ok && v != l.GetValue() {
					continue metric
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return -1
}
