package main

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/redis/go-redis/v9"
)

// assignDurationMetric is leadrouterd's server-side AssignLead decision
// time histogram.
const assignDurationMetric = "leadrouter_assign_duration_seconds"

// histogram is a Prometheus histogram as scraped: cumulative counts per
// upper bound (ascending, +Inf last), the total count and sum. Series of
// the same name (e.g. one per workspace label) are added together.
type histogram struct {
	bounds []float64
	counts []float64
	count  float64
	sum    float64
}

// scrapeHistogram reads the histogram name from a /metrics endpoint. It
// returns nil and no error when the endpoint does not export it.
func scrapeHistogram(ctx context.Context, url, name string) (*histogram, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	// Ask for the text format: it is what the parser reads.
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	mf, ok := fams[name]
	if !ok {
		return nil, nil
	}
	if mf.GetType() != dto.MetricType_HISTOGRAM {
		return nil, fmt.Errorf("%s is a %v, not a histogram", name, mf.GetType())
	}
	return sumSeries(mf.GetMetric()), nil
}

// sumSeries adds up the histogram series of one family by bucket bound.
func sumSeries(ms []*dto.Metric) *histogram {
	byBound := map[float64]float64{}
	h := &histogram{}
	for _, m := range ms {
		hg := m.GetHistogram()
		for _, b := range hg.GetBucket() {
			byBound[b.GetUpperBound()] += float64(b.GetCumulativeCount())
		}
		h.count += float64(hg.GetSampleCount())
		h.sum += hg.GetSampleSum()
	}
	for b := range byBound {
		h.bounds = append(h.bounds, b)
	}
	sort.Float64s(h.bounds)
	if len(h.bounds) == 0 || !math.IsInf(h.bounds[len(h.bounds)-1], 1) {
		h.bounds = append(h.bounds, math.Inf(1)) // the text format may omit +Inf; it equals the count
		byBound[math.Inf(1)] = h.count
	}
	for _, b := range h.bounds {
		h.counts = append(h.counts, byBound[b])
	}
	return h
}

// sub returns the observations made between an earlier scrape and h. A
// nil earlier scrape counts as empty.
func (h *histogram) sub(earlier *histogram) *histogram {
	out := &histogram{bounds: h.bounds, counts: make([]float64, len(h.counts)), count: h.count, sum: h.sum}
	copy(out.counts, h.counts)
	if earlier == nil {
		return out
	}
	prev := make(map[float64]float64, len(earlier.bounds))
	for i, b := range earlier.bounds {
		prev[b] = earlier.counts[i]
	}
	for i, b := range out.bounds {
		out.counts[i] -= prev[b]
	}
	out.count -= earlier.count
	out.sum -= earlier.sum
	return out
}

// add accumulates the observations of o (same buckets) into h.
func (h *histogram) add(o *histogram) *histogram {
	if h == nil {
		return o
	}
	if o == nil {
		return h
	}
	for i := range h.counts {
		h.counts[i] += o.counts[i]
	}
	h.count += o.count
	h.sum += o.sum
	return h
}

// quantile estimates the q-quantile (0 < q < 1) the way PromQL's
// histogram_quantile does: find the bucket holding the rank q*count and
// interpolate linearly inside it, from 0 for the first bucket. A rank in
// the +Inf bucket returns the largest finite bound. NaN when empty.
func (h *histogram) quantile(q float64) float64 {
	if h == nil || h.count <= 0 || len(h.bounds) == 0 {
		return math.NaN()
	}
	rank := q * h.counts[len(h.counts)-1]
	i := sort.Search(len(h.counts), func(i int) bool { return h.counts[i] >= rank })
	switch {
	case i >= len(h.bounds):
		i = len(h.bounds) - 1
	case math.IsInf(h.bounds[i], 1):
		if len(h.bounds) < 2 {
			return math.NaN()
		}
		return h.bounds[len(h.bounds)-2]
	}
	lo, below := 0.0, 0.0
	if i > 0 {
		lo, below = h.bounds[i-1], h.counts[i-1]
	}
	inBucket := h.counts[i] - below
	if inBucket <= 0 {
		return h.bounds[i]
	}
	return lo + (h.bounds[i]-lo)*(rank-below)/inBucket
}

// mean is sum/count, NaN when empty.
func (h *histogram) mean() float64 {
	if h == nil || h.count <= 0 {
		return math.NaN()
	}
	return h.sum / h.count
}

// seconds turns a quantile in seconds into a duration (0 for NaN).
func seconds(s float64) time.Duration {
	if math.IsNaN(s) {
		return 0
	}
	return time.Duration(s * float64(time.Second))
}

// cmdStat is one Redis command's line of INFO commandstats: calls and the
// microseconds spent executing them (for EVALSHA, running the script).
type cmdStat struct{ calls, usec int64 }

// redisCommandStats reads INFO commandstats, by lower-case command name.
func redisCommandStats(ctx context.Context, rdb *redis.Client) (map[string]cmdStat, error) {
	info, err := rdb.Info(ctx, "commandstats").Result()
	if err != nil {
		return nil, fmt.Errorf("redis INFO commandstats: %w", err)
	}
	out := map[string]cmdStat{}
	for _, line := range strings.Split(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		name, found := strings.CutPrefix(name, "cmdstat_")
		if !ok || !found {
			continue
		}
		var st cmdStat
		for _, kv := range strings.Split(rest, ",") {
			k, v, _ := strings.Cut(kv, "=")
			n, _ := strconv.ParseInt(v, 10, 64)
			switch k {
			case "calls":
				st.calls = n
			case "usec":
				st.usec = n
			}
		}
		out[name] = st
	}
	return out, nil
}

// subStats returns the calls made between two readings, adding them to acc.
func subStats(acc, after, before map[string]cmdStat) map[string]cmdStat {
	if acc == nil {
		acc = map[string]cmdStat{}
	}
	for k, a := range after {
		b := before[k]
		if d := (cmdStat{a.calls - b.calls, a.usec - b.usec}); d.calls > 0 {
			s := acc[k]
			acc[k] = cmdStat{s.calls + d.calls, s.usec + d.usec}
		}
	}
	return acc
}
