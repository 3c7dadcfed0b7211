package metrics

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/leadrouter/leadrouter/engine"
)

// StateSource is what StateCollector reads at scrape time; *engine.Engine
// implements it.
type StateSource interface {
	Workspaces(ctx context.Context) ([]string, error)
	QueueState(ctx context.Context, ws string) ([]engine.PoolQueue, error)
	Reps(ctx context.Context, ws string) ([]engine.RepState, error)
	StoredLeads(ctx context.Context, ws string) (map[engine.State]int64, error)
}

// StateCollector reports gauges that describe Redis state: queued leads and
// their age per pool, reps by status, stored lead records by state. They are read at scrape time, so every
// replica reports the same truth (aggregate them with max, not sum).
type StateCollector struct {
	src     StateSource
	wsLabel bool
	timeout time.Duration
	log     *slog.Logger

	// One scrape at a time reads Redis, and what it read serves every
	// scrape for stateTTL: any number of scrapers cost one read of every
	// workspace per stateTTL.
	mu     sync.Mutex
	last   []prometheus.Metric
	readAt time.Time

	queued, oldest, reps, stored, failed *prometheus.Desc
}

// NewStateCollector returns a collector reading src; register it next to
// the Metrics of the same server (the same Options).
func NewStateCollector(src StateSource, o Options, log *slog.Logger) *StateCollector {
	var ws []string
	if o.WorkspaceLabel {
		ws = []string{"workspace"}
	}
	d := func(name, help string, l ...string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(namespace, "", name), help, append(append([]string{}, ws...), l...), nil)
	}
	return &StateCollector{
		src: src, wsLabel: o.WorkspaceLabel, timeout: 5 * time.Second, log: log,
		queued: d("queued_leads", "Leads queued now, by pool (read from Redis at scrape time).", "pool"),
		oldest: d("queued_oldest_seconds",
			"How long the earliest arrival still queued has waited, by pool; 0 for an empty queue (read at scrape time).", "pool"),
		reps:   d("reps", "Reps of the routing config by status (read from Redis at scrape time).", "status"),
		stored: d("stored_leads", "Lead records kept in Redis, by state; CLOSED and UNROUTABLE ones until settings.retain_closed passes (read at scrape time).", "state"),
		failed: prometheus.NewDesc(prometheus.BuildFQName(namespace, "", "state_scrape_errors"),
			"1 when the last scrape could not read some workspace's state from Redis.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *StateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.queued
	ch <- c.oldest
	ch <- c.reps
	ch <- c.stored
	ch <- c.failed
}

// stateTTL is how long one read of the state serves scrapes.
const stateTTL = 5 * time.Second

// Collect implements prometheus.Collector with the state read at most
// stateTTL ago (read now, one scrape at a time, when older).
func (c *StateCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.last == nil || time.Since(c.readAt) >= stateTTL {
		c.last, c.readAt = c.read(), time.Now()
	}
	for _, m := range c.last {
		ch <- m
	}
}

// read reads the state. Without the workspace label, queue depths and rep
// counts are summed over workspaces and the oldest age is the maximum.
func (c *StateCollector) read() (ms []prometheus.Metric) {
	emit := func(m prometheus.Metric) { ms = append(ms, m) }
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	failed := 0.0
	wss, err := c.src.Workspaces(ctx)
	if err != nil {
		c.log.Warn("metrics: workspaces not read", "err", err)
		emit(prometheus.MustNewConstMetric(c.failed, prometheus.GaugeValue, 1))
		return ms
	}
	type poolKey struct{ ws, pool string }
	queued := map[poolKey]float64{}
	oldest := map[poolKey]float64{}
	type statusKey struct{ ws, status string }
	reps := map[statusKey]float64{}
	stored := map[statusKey]float64{}
	statuses := []engine.RepStatus{engine.StatusAvailable, engine.StatusAway, engine.StatusOffline}
	for _, ws := range wss {
		key := ""
		if c.wsLabel {
			key = ws
		}
		queues, qerr := c.src.QueueState(ctx, ws)
		rs, rerr := c.src.Reps(ctx, ws)
		counts, serr := c.src.StoredLeads(ctx, ws)
		if qerr != nil || rerr != nil || serr != nil {
			c.log.Warn("metrics: workspace state not read", "workspace", ws, "queues_err", qerr, "reps_err", rerr, "stored_err", serr)
			failed = 1
			continue
		}
		for _, st := range engine.States {
			stored[statusKey{key, string(st)}] += float64(counts[st])
		}
		for _, q := range queues {
			k := poolKey{key, q.PoolID}
			queued[k] += float64(q.Queued)
			oldest[k] = max(oldest[k], q.OldestAge.Seconds())
		}
		for _, st := range statuses {
			reps[statusKey{key, string(st)}] += 0
		}
		for _, r := range rs {
			st := r.Status
			if st == "" {
				st = r.Rep.InitialStatus // no record yet
			}
			if st == "" {
				st = engine.StatusAvailable
			}
			reps[statusKey{key, string(st)}]++
		}
	}
	lv := func(ws string, l string) []string {
		if c.wsLabel {
			return []string{ws, l}
		}
		return []string{l}
	}
	for k, v := range queued {
		emit(prometheus.MustNewConstMetric(c.queued, prometheus.GaugeValue, v, lv(k.ws, k.pool)...))
		emit(prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, oldest[k], lv(k.ws, k.pool)...))
	}
	for k, v := range reps {
		emit(prometheus.MustNewConstMetric(c.reps, prometheus.GaugeValue, v, lv(k.ws, k.status)...))
	}
	for k, v := range stored {
		emit(prometheus.MustNewConstMetric(c.stored, prometheus.GaugeValue, v, lv(k.ws, k.status)...))
	}
	emit(prometheus.MustNewConstMetric(c.failed, prometheus.GaugeValue, failed))
	return ms
}
