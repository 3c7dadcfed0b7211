package main

import (
	"cmp"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	pb "github.com/leadrouter/leadrouter/gen/leadrouter/v1"
)

// side is one server's sample in a row.
type side struct {
	name string
	s    *sample
}

func (r row) sides() []side {
	sd := []side{{assignName, r.a}, {baselineName, r.b}}
	if r.f != nil {
		sd = append(sd, side{floorName, r.f})
	}
	return sd
}

// print writes one concurrency's table. Targets are marked PASS or FAIL at
// the concurrency they are judged at, and (pass) or (fail) elsewhere.
func (r row) print(out io.Writer, judged bool) {
	fmt.Fprintf(out, "concurrency %d: %d workers per server over %d connections; %v warm-up each, then %d segments of %v each, alternating\n",
		r.conc, r.conc, r.conns, r.warmup, r.segments, r.segment)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\treq/s\tp50\tp99\tmax\tcalls\tfailed\tresponse\tCPU/call: server\tredis\tleadbench\t")
	for _, sd := range r.sides() {
		s, cpu := sd.s, r.cpu[sd.name]
		per := func(d time.Duration) string {
			if !cpu.ok || s.n() == 0 {
				return "-"
			}
			return fmtDur(d / time.Duration(s.n()))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s B\t%s\t%s\t%s\t\n", sd.name, comma(int(math.Round(s.rps()))),
			fmtDur(s.pct(50)), fmtDur(s.pct(99)), fmtDur(s.pct(100)), comma(s.n()), s.errs,
			comma(s.respSize()), per(cpu.server), per(cpu.redis), per(cpu.client))
	}
	tw.Flush()
	mark := func(ok bool) string {
		if judged {
			return passFail(ok)
		}
		return "(" + strings.ToLower(passFail(ok)) + ")"
	}
	fmt.Fprintf(out, "AssignLead/baseline: req/s %.2fx (target >= %.2fx: %s), p99 %.2fx (target <= %.1fx: %s)\n",
		r.rpsRatio(), minThroughputRatio, mark(r.rpsRatio() >= minThroughputRatio),
		r.p99Ratio(), maxP99Ratio, mark(r.p99Ratio() <= maxP99Ratio))
	if r.f != nil {
		fb, fbp := ratios(r.f, r.b)
		af, afp := ratios(r.a, r.f)
		fmt.Fprintf(out, "store floor/baseline: req/s %.2fx, p99 %.2fx (storing the lead, as any design must); AssignLead/store floor: req/s %.2fx, p99 %.2fx (the decision on top)\n",
			fb, fbp, af, afp)
		fmt.Fprintf(out, "per call, AssignLead takes %s\n", floorBudget(af, fb))
	}
	if r.decision != nil && r.decision.count > 0 {
		fmt.Fprintf(out, "leadrouterd decision time (%s): p50 %s, p99 %s, mean %s over %s calls\n", assignDurationMetric,
			fmtDur(seconds(r.decision.quantile(0.5))), fmtDur(seconds(r.decision.quantile(0.99))),
			fmtDur(seconds(r.decision.mean())), comma(int(r.decision.count)))
	}
	fmt.Fprintln(out, "Redis per call (INFO commandstats over each server's segments, leadrouterd's sweeper included; calls x execution time; commands a script runs count inside its EVALSHA too):")
	width := 0
	for _, sd := range r.sides() {
		width = max(width, len(sd.name)+1)
	}
	for _, sd := range r.sides() {
		fmt.Fprintf(out, "  %-*s %s\n", width, sd.name+":", perCall(r.redis[sd.name], sd.s.n()+sd.s.errs))
	}
	for _, sd := range r.sides() {
		if sd.s.errs > 0 {
			fmt.Fprintf(out, "FAILED CALLS: %s had %d, the first: %v\n", sd.name, sd.s.errs, sd.s.firstErr)
		}
	}
	noteStates(out, r.a)
	fmt.Fprintln(out)
}

// floorBudget compares AssignLead's time per call with the store floor's
// and says what the throughput target allows, from af (AssignLead's req/s
// over the store floor's) and fb (the store floor's over the baseline's).
// With the workers fixed, time per call goes as 1 / req/s (Little's law),
// so AssignLead at the target's ratio r of the baseline's req/s takes at
// most fb / r times the store floor's time.
func floorBudget(af, fb float64) string {
	s := fmt.Sprintf("%.2fx the store floor's time (%+.0f%%); ", 1/af, 100*(1/af-1))
	allowed := fb / minThroughputRatio
	if allowed < 1 {
		return s + fmt.Sprintf("the %.2fx target allows nothing on top: the store floor alone is %.2fx the baseline", minThroughputRatio, fb)
	}
	return s + fmt.Sprintf("the %.2fx target allows at most %.2fx (%+.0f%%)", minThroughputRatio, allowed, 100*(allowed-1))
}

// perCall describes the Redis commands run per call, the three that took
// the most time first.
func perCall(stats map[string]cmdStat, calls int) string {
	type named struct {
		name string
		cmdStat
	}
	var cmds []named
	for k, v := range stats {
		if k != "info" { // the benchmark's own readings
			cmds = append(cmds, named{k, v})
		}
	}
	if calls == 0 || len(cmds) == 0 {
		return "none"
	}
	slices.SortFunc(cmds, func(a, b named) int { return cmp.Compare(b.usec, a.usec) })
	var parts []string
	for i, c := range cmds {
		if i == 3 {
			break
		}
		each := fmtDur(time.Duration(c.usec) * time.Microsecond / time.Duration(c.calls))
		if n := float64(c.calls) / float64(calls); n >= 0.01 {
			parts = append(parts, fmt.Sprintf("%s %.2f x %s", strings.ToUpper(c.name), n, each))
		} else { // background work, e.g. the sweeper: its count says more
			parts = append(parts, fmt.Sprintf("%s %d in all x %s", strings.ToUpper(c.name), c.calls, each))
		}
	}
	return strings.Join(parts, ", ")
}

// noteStates reports AssignLead answers other than a fresh ASSIGNED: the
// benchmark's config is meant to assign every lead at once.
func noteStates(out io.Writer, s *sample) {
	if s.notAssigned() == 0 && s.dups == 0 {
		return
	}
	var parts []string
	for st, n := range s.states {
		if st != pb.AssignmentState_ASSIGNMENT_STATE_ASSIGNED {
			parts = append(parts, fmt.Sprintf("%s %d", strings.TrimPrefix(st.String(), "ASSIGNMENT_STATE_"), n))
		}
	}
	slices.Sort(parts)
	if s.dups > 0 {
		parts = append(parts, fmt.Sprintf("duplicate %d", s.dups))
	}
	fmt.Fprintf(out, "note: AssignLead answers other than ASSIGNED: %s\n", strings.Join(parts, ", "))
}

// printSummary writes all concurrencies in one table.
func printSummary(out io.Writer, rows []row, judgedAt int) {
	fmt.Fprintln(out, "summary (closed loop; ratios are AssignLead/baseline, and the store floor's over the baseline's)")
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "concurrency\tAssignLead req/s\tp50\tp99\tbaseline req/s\tp50\tp99\treq/s ratio\tp99 ratio\tstore floor req/s\tp99\tfloor/base req/s\tfloor/base p99\t")
	for _, r := range rows {
		m1, m2 := "", ""
		if r.conc == judgedAt {
			m1 = " " + passFail(r.rpsRatio() >= minThroughputRatio)
			m2 = " " + passFail(r.p99Ratio() <= maxP99Ratio)
		}
		floor := "-\t-\t-\t-"
		if r.f != nil {
			fb, fbp := ratios(r.f, r.b)
			floor = fmt.Sprintf("%s\t%s\t%.2fx\t%.2fx", comma(int(math.Round(r.f.rps()))), fmtDur(r.f.pct(99)), fb, fbp)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%.2fx%s\t%.2fx%s\t%s\t\n", r.conc,
			comma(int(math.Round(r.a.rps()))), fmtDur(r.a.pct(50)), fmtDur(r.a.pct(99)),
			comma(int(math.Round(r.b.rps()))), fmtDur(r.b.pct(50)), fmtDur(r.b.pct(99)),
			r.rpsRatio(), m1, r.p99Ratio(), m2, floor)
	}
	tw.Flush()
	fmt.Fprintln(out)
}

// printRate writes a fixed-rate step against the server named.
func printRate(out io.Writer, o *options, name string, rate float64, s *openSample, dec *histogram, st *stalls) {
	fmt.Fprintf(out, "fixed rate: %s calls/s to %s scheduled for %v (open loop, %d workers over %d connections)\n",
		comma(int(rate)), name, o.rateDuration, o.rateWorkers, o.conns)
	fmt.Fprintf(out, "  achieved: %s answered/s (%s scheduled, %s answered, %d failed, %s started over 1ms late)\n",
		comma(int(math.Round(float64(s.n())/s.duration.Seconds()))), comma(s.sent), comma(s.n()), s.errs, comma(s.late))
	fmt.Fprintf(out, "  client latency from the scheduled send: p50 %s, p99 %s, max %s\n",
		fmtDur(s.pct(50)), fmtDur(s.pct(99)), fmtDur(s.pct(100)))
	fmt.Fprintf(out, "  client latency from the call's start:   p50 %s, p99 %s, max %s\n",
		fmtDur(s.service.pct(50)), fmtDur(s.service.pct(99)), fmtDur(s.service.pct(100)))
	if dec != nil && dec.count > 0 {
		fmt.Fprintf(out, "  server-side time (%s, %s calls): p50 %s, p99 %s, mean %s\n", assignDurationMetric,
			comma(int(dec.count)), fmtDur(seconds(dec.quantile(0.5))), fmtDur(seconds(dec.quantile(0.99))), fmtDur(seconds(dec.mean())))
	}
	fmt.Fprintf(out, "  Redis commands that took %v or more (SLOWLOG; a command inside a script counts too): %s\n", stallThreshold, st)
	if s.errs > 0 {
		fmt.Fprintf(out, "FAILED CALLS: %d, the first: %v\n", s.errs, s.firstErr)
	}
	noteStates(out, s.sample)
	fmt.Fprintln(out)
}

// fmtDur prints a latency with three significant digits at most.
func fmtDur(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%dµs", d.Microseconds())
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.2fms", float64(d)/1e6)
	case d < 100*time.Millisecond:
		return fmt.Sprintf("%.1fms", float64(d)/1e6)
	case d < time.Second:
		return fmt.Sprintf("%.0fms", float64(d)/1e6)
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}

// comma prints n with thousands separators.
func comma(n int) string {
	s := strconv.Itoa(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
