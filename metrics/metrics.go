// Package metrics is leadrouter's Prometheus instrumentation: the
// speed-to-lead histograms and routing counters (fed by engine.Observer),
// stream gauges, gRPC server metrics, and the gauges read from Redis at
// scrape time (StateCollector).
//
// Cardinality is bounded by the routing config: labels are pools, outcomes,
// results, kinds, statuses and store operations, never a lead, rep or
// email. A workspace label is added only with Options.WorkspaceLabel.
package metrics

import (
	"context"
	"errors"
	"strconv"
	"time"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/leadrouter/leadrouter/engine"
)

const namespace = "leadrouter"

// Streams, the values of the stream label.
const (
	StreamAssignments = "assignments" // RepService.WatchAssignments (rep desktops)
	StreamEvents      = "events"      // EventService.WatchEvents (dashboards)
)

// Options configures Metrics.
type Options struct {
	// WorkspaceLabel adds a workspace label to every leadrouter_* series.
	// Off by default: one series set per workspace multiplies cardinality.
	WorkspaceLabel bool
}

// Metrics holds every collector of one server. Its methods are safe on a
// nil *Metrics (they do nothing), so instrumented code needs no checks.
type Metrics struct {
	wsLabel bool

	assignDuration *prometheus.HistogramVec
	assignments    *prometheus.CounterVec
	offerAccept    *prometheus.HistogramVec
	offers         *prometheus.CounterVec
	speedToLead    *prometheus.HistogramVec
	slaBreaches    *prometheus.CounterVec
	queueWait      *prometheus.HistogramVec
	autoPaused     *prometheus.CounterVec
	removed        *prometheus.CounterVec
	quotaRefused   *prometheus.CounterVec
	regressions    prometheus.Counter
	subscribers    *prometheus.GaugeVec
	clockOffset    prometheus.Gauge
	redisUsed      prometheus.Gauge
	redisMax       prometheus.Gauge
	mastersDown    prometheus.Gauge
	sweepDuration  prometheus.Histogram
	timersFired    *prometheus.CounterVec
	timersFailed   *prometheus.CounterVec
	timerLateness  *prometheus.HistogramVec
	eventDelivery  *prometheus.HistogramVec
	redisErrors    *prometheus.CounterVec
	redisTimeouts  *prometheus.CounterVec
	handlerPanics  prometheus.Counter
	grpc           *grpcprom.ServerMetrics
	httpRequests   *prometheus.CounterVec
	httpDuration   *prometheus.HistogramVec
	sinkDelivered  *prometheus.CounterVec
	sinkDuration   *prometheus.HistogramVec
	sinkLag        *prometheus.GaugeVec
	sinkDead       *prometheus.GaugeVec
	sinkLost       *prometheus.CounterVec
}

var _ engine.Observer = (*Metrics)(nil)

// Bucket layouts. Assignment is a Redis round trip (sub-millisecond to a
// second); speed to lead is human time (a second to two days).
var (
	assignBuckets = []float64{50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 500e-3, 1}
	stlBuckets    = []float64{1, 5, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 28800, 86400, 172800}
	acceptBuckets = []float64{0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600}
	queueBuckets  = []float64{0.1, 0.5, 1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, 28800, 86400}
	sweepBuckets  = []float64{100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 500e-3, 1, 2.5}
	lateBuckets   = []float64{5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 150e-3, 250e-3, 500e-3, 1, 2.5, 5, 10, 30, 60}
	sinkBuckets   = []float64{1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 500e-3, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600, 21600, 86400}
	deliveryBkts  = []float64{100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 500e-3, 1, 2.5, 5, 10}
)

// New creates the collectors and registers them, with the gRPC server
// metrics, on reg.
func New(reg prometheus.Registerer, o Options) *Metrics {
	m := &Metrics{wsLabel: o.WorkspaceLabel}
	labels := func(l ...string) []string {
		if o.WorkspaceLabel {
			return append([]string{"workspace"}, l...)
		}
		return l
	}
	hist := func(name, help string, buckets []float64, l ...string) *prometheus.HistogramVec {
		return prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: name, Help: help, Buckets: buckets}, labels(l...))
	}
	counter := func(name, help string, l ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help}, labels(l...))
	}
	m.assignDuration = hist("assign_duration_seconds",
		"Server-side AssignLead decision time, from the request to the recorded decision.", assignBuckets)
	m.assignments = counter("assignments_total",
		"AssignLead calls by pool and outcome (assigned: placed with a rep, offered or assigned; queued; unroutable; duplicate).",
		"pool", "outcome")
	m.offerAccept = hist("offer_accept_seconds", "Time from an offer to its acceptance.", acceptBuckets)
	m.offers = counter("offers_total", "Offers resolved, by pool and result (accepted, rejected, timed_out).", "pool", "result")
	m.speedToLead = hist("speed_to_lead_seconds",
		"Speed to lead: the lead's submission to its first recorded contact.", stlBuckets)
	m.slaBreaches = counter("sla_breaches_total",
		"SLA breaches by pool and kind (first_contact: no contact within first_contact_within; accept: an offer not accepted within accept_within).",
		"pool", "kind")
	m.queueWait = hist("queue_wait_seconds",
		"Time leads spent queued, measured when they leave the queue (placed with a rep or given up as unroutable).", queueBuckets)
	m.autoPaused = counter("rep_auto_paused_total", "Reps set AWAY after too many missed offers, by pool.", "pool")
	m.removed = counter("records_removed_total",
		"Lead records removed once settings.retain_closed passed after they were CLOSED or UNROUTABLE.")
	m.regressions = prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "store_regressions_total",
		Help: "Streams resumed from past the end of the event history: Redis came back with less than it had (an older AOF or RDB, or a failover that lost writes)."})
	m.quotaRefused = counter("quota_refused_total",
		"AssignLead calls refused because the workspace holds settings.max_stored_leads records.")
	m.subscribers = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Name: "stream_subscribers",
		Help: "Open notification streams on this replica (assignments: rep desktops; events: dashboards)."}, []string{"stream"})
	m.eventDelivery = hist("event_delivery_seconds",
		"Time from an event's production (its state change in Redis) to its sending on a stream; live events only, not a resumed backlog.",
		deliveryBkts)
	m.redisErrors = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "redis_errors_total",
		Help: "Failed Redis calls by operation (script or command): errors from Redis or its connection."}, []string{"op"})
	m.redisTimeouts = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "redis_timeouts_total",
		Help: "Calls whose deadline ran out while they waited for Redis, by operation: a slow Redis, or callers with tight deadlines (answered UNAVAILABLE). op=ping is the health check, whose deadline is the service's own: a hung Redis."}, []string{"op"})
	m.clockOffset = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace, Name: "clock_offset_seconds",
		Help: "This replica's clock minus Redis's, measured at every health check; beyond --max-clock-offset the replica refuses calls and sweeps (NOT_SERVING)."})
	m.redisUsed = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace, Name: "redis_used_memory_bytes",
		Help: "Memory the Redis uses (INFO used_memory); on a cluster, the master nearest its maxmemory. Read every 15 s."})
	m.redisMax = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace, Name: "redis_maxmemory_bytes",
		Help: "That Redis's maxmemory (0: none, and nothing stops it filling the host)."})
	m.mastersDown = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace, Name: "redis_unreachable_masters",
		Help: "Redis servers (cluster masters; 1 for one server) that did not answer this replica's last health ping. The replica serves while any answers; the workspaces of one that does not get UNAVAILABLE."})
	m.sweepDuration = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace, Name: "sweep_duration_seconds",
		Help: "One sweep of every workspace by this replica: finding due timers, firing its share, and (every tenth) draining queues.", Buckets: sweepBuckets})
	m.timersFired = counter("timers_fired_total", "Due timers this replica fired, by kind (offer, sla, warn, escalate, expire).", "kind")
	m.timersFailed = counter("timers_failed_total",
		"Timers whose firing failed, by kind and result (retry: tried again later, parked: failed too often, will not fire).", "kind", "result")
	m.timerLateness = hist("timer_lateness_seconds", "How late due timers fired: fire time minus due time, by kind.", lateBuckets, "kind")
	m.handlerPanics = prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "handler_panics_total",
		Help: "gRPC handler panics recovered (each became INTERNAL for its call)."})
	m.grpc = grpcprom.NewServerMetrics(grpcprom.WithServerHandlingTimeHistogram(
		grpcprom.WithHistogramBuckets([]float64{100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 500e-3, 1, 2.5, 5, 10})))
	m.httpRequests = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "http_requests_total",
		Help: "Requests to the HTTP edge (--http-listen) by route (method and path template) and status code."}, []string{"route", "code"})
	m.httpDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace, Name: "http_request_duration_seconds",
		Help:    "HTTP edge request time by route, from the request to the last byte of the answer (a stream: until it ends).",
		Buckets: []float64{100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 500e-3, 1, 2.5, 5, 10}}, []string{"route"})
	gauge := func(name, help string, l ...string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Name: name, Help: help}, labels(l...))
	}
	m.sinkDelivered = counter("sink_deliveries_total",
		"Sink delivery attempts by sink and result (delivered; retry: failed, tried again with back-off; dead: dead-lettered; skipped: nothing to send, such as a Slack message with no channel).",
		"sink", "result")
	m.sinkDuration = hist("sink_delivery_seconds",
		"Time from an event's production to its acknowledged delivery by a sink.", sinkBuckets, "sink")
	m.sinkLag = gauge("sink_lag_seconds",
		"Age of the oldest event a sink has not delivered (0: none pending), read every 5 s by each replica.", "sink")
	m.sinkDead = gauge("sink_dead_letters", "Dead letters a sink keeps (at most 10,000).", "sink")
	m.sinkLost = counter("sink_lost_total",
		"Events settings.events_max_age removed before a sink delivered them: the sink is lagging.", "sink")
	for _, s := range []string{StreamAssignments, StreamEvents} {
		m.subscribers.WithLabelValues(s)
	}
	// Series from the start, so that rate() sees the first one.
	m.redisErrors.WithLabelValues("ping")
	m.redisTimeouts.WithLabelValues("ping")
	m.redisTimeouts.WithLabelValues("lead_decide")
	reg.MustRegister(m.assignDuration, m.assignments, m.offerAccept, m.offers, m.speedToLead, m.slaBreaches,
		m.queueWait, m.autoPaused, m.removed, m.quotaRefused, m.regressions, m.subscribers, m.eventDelivery, m.redisErrors, m.redisTimeouts, m.handlerPanics, m.clockOffset, m.redisUsed, m.redisMax, m.mastersDown,
		m.sweepDuration, m.timersFired, m.timersFailed, m.timerLateness, m.grpc, m.httpRequests, m.httpDuration,
		m.sinkDelivered, m.sinkDuration, m.sinkLag, m.sinkDead, m.sinkLost)
	return m
}

// GRPC returns the gRPC server metrics (interceptors and InitializeMetrics);
// nil for a nil *Metrics.
func (m *Metrics) GRPC() *grpcprom.ServerMetrics {
	if m == nil {
		return nil
	}
	return m.grpc
}

func (m *Metrics) lv(ws string, l ...string) []string {
	if m.wsLabel {
		return append([]string{ws}, l...)
	}
	return l
}

func pool(id string) string {
	if id == "" {
		return "none"
	}
	return id
}

// LeadDecided implements engine.Observer.
func (m *Metrics) LeadDecided(ws string, outcome engine.DecideOutcome, poolID string, took time.Duration) {
	if m == nil {
		return
	}
	m.assignDuration.WithLabelValues(m.lv(ws)...).Observe(took.Seconds())
	m.assignments.WithLabelValues(m.lv(ws, pool(poolID), string(outcome))...).Inc()
}

// Recorded implements engine.Observer: facts become offer, SLA, speed-to-
// lead, queue and auto-pause metrics.
func (m *Metrics) Recorded(ws string, facts []engine.Fact) {
	if m == nil {
		return
	}
	for _, f := range facts {
		p := pool(f.PoolID)
		switch f.Kind {
		case engine.EventAccepted:
			m.offers.WithLabelValues(m.lv(ws, p, "accepted")...).Inc()
			observe(m.offerAccept.WithLabelValues(m.lv(ws)...), f.Took)
		case engine.EventOfferRejected:
			m.offers.WithLabelValues(m.lv(ws, p, "rejected")...).Inc()
		case engine.EventOfferWithdrawn: // only ever for an offer not accepted in time
			m.offers.WithLabelValues(m.lv(ws, p, "timed_out")...).Inc()
			m.slaBreaches.WithLabelValues(m.lv(ws, p, "accept")...).Inc()
		case engine.EventSLABreached:
			m.slaBreaches.WithLabelValues(m.lv(ws, p, "first_contact")...).Inc()
		case engine.EventFirstContact:
			observe(m.speedToLead.WithLabelValues(m.lv(ws)...), f.Took)
		case engine.EventAutoPaused:
			m.autoPaused.WithLabelValues(m.lv(ws, p)...).Inc()
		case engine.FactDequeued:
			observe(m.queueWait.WithLabelValues(m.lv(ws)...), f.Took)
		case engine.FactRemoved:
			m.removed.WithLabelValues(m.lv(ws)...).Inc()
		}
	}
}

func observe(o prometheus.Observer, d time.Duration) {
	if d >= 0 {
		o.Observe(d.Seconds())
	}
}

// StoreRegressed implements engine.Observer.
func (m *Metrics) StoreRegressed(string) {
	if m != nil {
		m.regressions.Inc()
	}
}

// QuotaRefused implements engine.Observer.
func (m *Metrics) QuotaRefused(ws string) {
	if m != nil {
		m.quotaRefused.WithLabelValues(m.lv(ws)...).Inc()
	}
}

// StoreFailed implements engine.Observer. A call whose deadline ran out
// is a timeout, not an error: the deadline is often the caller's own (a
// client that allows 5 ms), and Redis may be healthy. Timeouts of the
// health ping, whose deadline is the service's own, are how a hung Redis
// shows (the LeadrouterRedisNotAnswering alert).
func (m *Metrics) StoreFailed(op string, err error) {
	if m == nil {
		return
	}
	if errors.Is(err, context.DeadlineExceeded) {
		m.redisTimeouts.WithLabelValues(op).Inc()
		return
	}
	m.redisErrors.WithLabelValues(op).Inc()
}

// StreamOpened counts an open stream of the given kind until the returned
// function is called.
func (m *Metrics) StreamOpened(stream string) (closed func()) {
	if m == nil {
		return func() {}
	}
	g := m.subscribers.WithLabelValues(stream)
	g.Inc()
	return g.Dec
}

// Delivered records an event sent on a stream, produced at producedAt.
func (m *Metrics) Delivered(ws string, producedAt time.Time) {
	if m == nil {
		return
	}
	d := time.Since(producedAt)
	if d < 0 {
		d = 0 // the producing replica's clock is ahead of this one's
	}
	m.eventDelivery.WithLabelValues(m.lv(ws)...).Observe(d.Seconds())
}

// TimerFired implements engine.Observer.
func (m *Metrics) TimerFired(ws string, kind engine.TimerKind, late time.Duration) {
	if m == nil {
		return
	}
	m.timersFired.WithLabelValues(m.lv(ws, string(kind))...).Inc()
	m.timerLateness.WithLabelValues(m.lv(ws, string(kind))...).Observe(max(late, 0).Seconds())
}

// TimerFailed implements engine.Observer.
func (m *Metrics) TimerFailed(ws string, kind engine.TimerKind, parked bool) {
	if m == nil {
		return
	}
	result := "retry"
	if parked {
		result = "parked"
	}
	m.timersFailed.WithLabelValues(m.lv(ws, string(kind), result)...).Inc()
}

// Swept implements engine.Observer.
func (m *Metrics) Swept(took time.Duration) {
	if m == nil {
		return
	}
	m.sweepDuration.Observe(took.Seconds())
}

// SinkLost implements engine.Observer.
func (m *Metrics) SinkLost(ws, sink string, n int64) {
	if m != nil {
		m.sinkLost.WithLabelValues(m.lv(ws, sink)...).Add(float64(n))
	}
}

// SinkDelivered counts one delivery attempt of a sink; took (event
// produced to acknowledged) is observed for delivered and dead results.
func (m *Metrics) SinkDelivered(ws, sink, result string, took time.Duration) {
	if m == nil {
		return
	}
	m.sinkDelivered.WithLabelValues(m.lv(ws, sink, result)...).Inc()
	if result == "delivered" {
		m.sinkDuration.WithLabelValues(m.lv(ws, sink)...).Observe(took.Seconds())
	}
}

// SinkBacklog sets a sink's lag and dead-letter gauges.
func (m *Metrics) SinkBacklog(ws, sink string, lag time.Duration, dead int64) {
	if m == nil {
		return
	}
	m.sinkLag.WithLabelValues(m.lv(ws, sink)...).Set(lag.Seconds())
	m.sinkDead.WithLabelValues(m.lv(ws, sink)...).Set(float64(dead))
	m.sinkLost.WithLabelValues(m.lv(ws, sink)...).Add(0) // from the start, so that increase() sees the first loss
}

// SinkGone drops a removed sink's gauges.
func (m *Metrics) SinkGone(ws, sink string) {
	if m == nil {
		return
	}
	m.sinkLag.DeleteLabelValues(m.lv(ws, sink)...)
	m.sinkDead.DeleteLabelValues(m.lv(ws, sink)...)
}

// UnreachableMasters records how many Redis masters the last health ping
// found down.
func (m *Metrics) UnreachableMasters(n int) {
	if m == nil {
		return
	}
	m.mastersDown.Set(float64(n))
}

// ClockOffset records the last measurement of this replica's clock against
// Redis's.
func (m *Metrics) ClockOffset(d time.Duration) {
	if m == nil {
		return
	}
	m.clockOffset.Set(d.Seconds())
}

// RedisMemory records the Redis's used memory and its maxmemory.
func (m *Metrics) RedisMemory(used, max int64) {
	if m == nil {
		return
	}
	m.redisUsed.Set(float64(used))
	m.redisMax.Set(float64(max))
}

// HTTPServed counts one request to the HTTP edge: its route (method and
// path template, never the path itself: ids would make a series each), its
// status code and how long it took.
func (m *Metrics) HTTPServed(route string, code int, took time.Duration) {
	if m == nil {
		return
	}
	m.httpRequests.WithLabelValues(route, strconv.Itoa(code)).Inc()
	m.httpDuration.WithLabelValues(route).Observe(took.Seconds())
}

// HandlerPanicked counts a recovered handler panic.
func (m *Metrics) HandlerPanicked() {
	if m == nil {
		return
	}
	m.handlerPanics.Inc()
}
