package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"text/tabwriter"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"

	pb "github.com/leadrouter/leadrouter/gen/leadrouter/v1"
)

// minEdgeRatio is the HTTP edge's target: AssignLead over HTTP/JSON at
// this share of gRPC's throughput, at the target concurrency.
const minEdgeRatio = 0.7

// httpRouting is AssignLead over leadrouterd's HTTP edge, as a
// RoutingServiceClient, so the closed loop drives it as it drives gRPC.
type httpRouting struct {
	pb.RoutingServiceClient // the other calls: not used
	client                  *http.Client
	base                    string
}

var (
	edgeMarshal   = protojson.MarshalOptions{UseProtoNames: true}
	edgeUnmarshal = protojson.UnmarshalOptions{DiscardUnknown: true}
)

func (h *httpRouting) AssignLead(ctx context.Context, req *pb.AssignLeadRequest, _ ...grpc.CallOption) (*pb.AssignLeadResponse, error) {
	ws := req.GetWorkspace()
	if ws == "" {
		ws = "default"
	}
	body, err := edgeMarshal.Marshal(&pb.AssignLeadRequest{Lead: req.GetLead(), View: req.GetView()})
	if err != nil {
		return nil, err
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, h.base+"/v1/workspaces/"+url.PathEscape(ws)+"/leads:assign", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	hr.Header.Set("Content-Type", "application/json")
	resp, err := h.client.Do(hr)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %d: %s", resp.StatusCode, b)
	}
	out := &pb.AssignLeadResponse{}
	return out, edgeUnmarshal.Unmarshal(b, out)
}

// edgeTarget is leadrouterd's HTTP edge as a target: conns HTTP/1.1
// keep-alive connections' worth of idle pool, shared by the workers.
func edgeTarget(addr string, conc, pid int) *target {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conc, MaxConnsPerHost: 0, IdleConnTimeout: time.Minute}}
	return &target{name: "AssignLead/HTTP", letter: 'h', pid: pid,
		clients: []pb.RoutingServiceClient{&httpRouting{client: client, base: "http://" + addr}}}
}

// edgeStep compares AssignLead over HTTP/JSON with AssignLead over gRPC on
// the same leadrouterd, at concurrency conc, in alternating segments.
func (b *bench) edgeStep(ctx context.Context, conc int) error {
	if b.daemon.httpAddr == "" {
		fmt.Fprintln(b.out, "HTTP edge: this leadrouterd has no --http-listen; not measured")
		return nil
	}
	o := b.o
	edge := edgeTarget(b.daemon.httpAddr, conc, b.daemon.pid())
	seg := o.duration / time.Duration(o.segments)
	samples := map[*target]*sample{b.assign: newSample(), edge: newSample()}
	cpu := map[*target]cpuUse{}
	if o.warmup > 0 {
		w := closedLoop(ctx, edge.clients, o.request(), o.warmup, b.gens(conc, 100, edge.letter))
		if w.errs > 0 {
			return fmt.Errorf("HTTP edge warm-up: %d failed calls, first: %v", w.errs, w.firstErr)
		}
	}
	for i := range o.segments {
		order := []*target{b.assign, edge}
		if i%2 == 1 {
			slices.Reverse(order)
		}
		for _, t := range order {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			cpu0 := b.cpuNow(t)
			samples[t].merge(closedLoop(ctx, t.clients, o.request(), seg, b.gens(conc, 101+i, t.letter)))
			cpu[t] = cpu[t].add(b.cpuNow(t).sub(cpu0))
		}
	}
	fmt.Fprintf(b.out, "HTTP edge: AssignLead over HTTP/JSON (POST /v1/workspaces/{workspace}/leads:assign, keep-alive HTTP/1.1) vs gRPC on the same leadrouterd, concurrency %d, %d segments of %v each, alternating\n",
		conc, o.segments, seg)
	tw := tabwriter.NewWriter(b.out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\treq/s\tp50\tp99\tcalls\tfailed\tCPU/call: server\tleadbench\t")
	var failed error
	for _, t := range []*target{b.assign, edge} {
		s, u := samples[t], cpu[t]
		s.finish()
		per := func(d time.Duration) string {
			if !u.ok || s.n() == 0 {
				return "-"
			}
			return fmtDur(d / time.Duration(s.n()))
		}
		name := t.name
		if t == b.assign {
			name = "AssignLead/gRPC"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t\n", name, comma(int(s.rps())), fmtDur(s.pct(50)), fmtDur(s.pct(99)),
			comma(s.n()), s.errs, per(u.server), per(u.client))
		if s.errs > 0 && failed == nil {
			failed = fmt.Errorf("%s: %d failed calls, first: %v", name, s.errs, s.firstErr)
		}
	}
	tw.Flush()
	rps, p99 := ratios(samples[edge], samples[b.assign])
	fmt.Fprintf(b.out, "HTTP/gRPC: req/s %.2fx (target >= %.2fx: %s), p99 %.2fx\n\n", rps, minEdgeRatio, passFail(rps >= minEdgeRatio), p99)
	if failed != nil {
		return failed
	}
	if o.strict && rps < minEdgeRatio {
		return errors.New("the HTTP edge missed its throughput target")
	}
	return nil
}
