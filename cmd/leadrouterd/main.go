// Command leadrouterd is the leadrouter service: gRPC on --listen, Prometheus
// metrics on --metrics-listen, state in the Redis at --redis-url or, without
// one, in an embedded in-memory Redis. Every flag has a LEADROUTER_*
// environment equivalent (--redis-url: LEADROUTER_REDIS_URL).
package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/leadrouter/leadrouter/engine"
	"github.com/leadrouter/leadrouter/httpapi"
	"github.com/leadrouter/leadrouter/metrics"
	"github.com/leadrouter/leadrouter/server"
	"github.com/leadrouter/leadrouter/sinks"
	"github.com/leadrouter/leadrouter/store"
)

type options struct {
	listen, metricsListen, httpListen, redisURL, config, workspace, logLevel, logFormat string
	configOverwrite, allowPrivateSinks, sinks                                           bool
	metricsTokenFile                                                                    string
	shutdownTimeout, sweepInterval, healthInterval, maxClockOffset                      time.Duration
	reflection, metricsWorkspaceLabel, pprof                                            bool

	// Transport, identity and limits (security.go).
	tlsCert, tlsKey, tlsClientCA, tokenFile, redisCA string
	jwtKey, jwtIssuer, jwtAudience                   string
	insecure                                         bool
	assignRate, writeRate, readRate, streamRate      float64
	assignBurst, maxMsgBytes, maxStreamsPerRep       int
	ackReplicas                                      int
	writeBurst, readBurst, streamBurst               int
	maxEventStreams, maxConcurrentStreams            int
	defaultDeadline, maxConnectionAge                time.Duration
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "leadrouterd:", err)
		os.Exit(1)
	}
}

func parseFlags() (*options, error) {
	var o options
	fs := flag.NewFlagSet("leadrouterd", flag.ContinueOnError)
	fs.StringVar(&o.listen, "listen", "127.0.0.1:7070", "gRPC listen address")
	fs.StringVar(&o.httpListen, "http-listen", "127.0.0.1:8080", "HTTP/JSON listen address: every RPC, the streams as JSON lines or Server-Sent Events, /openapi.json, /healthz, /readyz, webhook intake (docs/http.md); the same TLS flags and tokens as gRPC (empty: off)")
	fs.StringVar(&o.metricsListen, "metrics-listen", "127.0.0.1:9464", "Prometheus /metrics listen address (empty: off)")
	fs.StringVar(&o.metricsTokenFile, "metrics-token-file", "", "file holding a bearer token the metrics listener requires (Authorization: Bearer <token>; Prometheus: authorization.credentials_file); empty: none")
	fs.BoolVar(&o.metricsWorkspaceLabel, "metrics-workspace-label", false, "label leadrouter_* metrics with the workspace (one series set per workspace)")
	fs.BoolVar(&o.pprof, "pprof", false, "serve net/http/pprof under /debug/pprof/ on the metrics listener")
	fs.StringVar(&o.redisURL, "redis-url", "", "Redis URL: redis://host:6379/0, rediss:// (TLS), unix:///path, redis+cluster://host1:7001,host2:7002 (Redis Cluster), redis+sentinel://host1:26379,host2:26379/mastername (Sentinel); empty: embedded in-memory store")
	fs.StringVar(&o.config, "config", "", "routing config YAML applied at start")
	fs.StringVar(&o.workspace, "workspace", engine.DefaultWorkspace, "workspace the --config file is applied to")
	fs.BoolVar(&o.configOverwrite, "config-overwrite", false, "apply a changed --config file even over a config applied through the API since")
	fs.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&o.logFormat, "log-format", "text", "text or json")
	fs.DurationVar(&o.shutdownTimeout, "shutdown-timeout", 10*time.Second, "how long in-flight calls may finish on SIGTERM")
	fs.DurationVar(&o.healthInterval, "health-interval", server.DefaultHealthInterval, "how often Redis is pinged to set the health service (a ping gets the same time to answer)")
	fs.DurationVar(&o.maxClockOffset, "max-clock-offset", engine.DefaultMaxClockOffset, "largest offset of this replica's clock from Redis's (measured at every health check) at which it still decides and sweeps; beyond it the replica is NOT_SERVING and answers UNAVAILABLE (0: no check)")
	fs.BoolVar(&o.reflection, "reflection", true, "register gRPC server reflection")
	fs.DurationVar(&o.sweepInterval, "sweep-interval", 100*time.Millisecond, "how often due timers are fired (queues drain every 10 sweeps)")
	fs.StringVar(&o.tlsCert, "tls-cert", "", "TLS certificate (PEM) of the gRPC listener")
	fs.StringVar(&o.tlsKey, "tls-key", "", "TLS private key (PEM) of the gRPC listener")
	fs.StringVar(&o.tlsClientCA, "tls-client-ca", "", "CA (PEM) client certificates must be signed by (mTLS)")
	fs.BoolVar(&o.insecure, "insecure", false, "serve plaintext gRPC (local development only)")
	fs.StringVar(&o.tokenFile, "token-file", "", "bearer token file (YAML, see leadctl token); reloaded on SIGHUP")
	fs.StringVar(&o.jwtKey, "jwt-key", "", "accept JWTs verified with this key file: a PEM public key (RS256, ES256, EdDSA) or an HS256 secret; reloaded on SIGHUP")
	fs.StringVar(&o.jwtIssuer, "jwt-issuer", "", "required iss claim of JWTs")
	fs.StringVar(&o.jwtAudience, "jwt-audience", "", "required aud claim of JWTs")
	fs.Float64Var(&o.assignRate, "assign-rate", 500, "decisions (AssignLead, PreviewAssignment) per second per token, unless its entry says otherwise (0: unlimited)")
	fs.IntVar(&o.assignBurst, "assign-burst", 1000, "decision burst per token")
	fs.Float64Var(&o.writeRate, "write-rate", server.DefaultWriteRate, "lead and rep updates and config applies per second per token (negative: unlimited)")
	fs.IntVar(&o.writeBurst, "write-burst", 2*server.DefaultWriteRate, "write burst per token")
	fs.Float64Var(&o.readRate, "read-rate", server.DefaultReadRate, "record, rep and config reads per second per token (negative: unlimited)")
	fs.IntVar(&o.readBurst, "read-burst", 2*server.DefaultReadRate, "read burst per token")
	fs.Float64Var(&o.streamRate, "stream-rate", server.DefaultStreamRate, "stream opens (WatchEvents, WatchAssignments) per second per token (negative: unlimited)")
	fs.IntVar(&o.streamBurst, "stream-burst", 5*server.DefaultStreamRate, "stream open burst per token")
	fs.IntVar(&o.maxEventStreams, "max-event-streams-per-token", server.DefaultMaxEventStreams, "WatchEvents streams one token may hold open on this replica (negative: unlimited)")
	fs.IntVar(&o.maxConcurrentStreams, "max-concurrent-streams", server.DefaultMaxConcurrentStreams, "calls and streams open at once on one client connection")
	fs.DurationVar(&o.maxConnectionAge, "max-connection-age", server.DefaultMaxConnectionAge, "how long a client connection lives before the client is asked to open a new one (its streams get 5 minutes more, then resume)")
	fs.DurationVar(&o.defaultDeadline, "default-deadline", server.DefaultDeadline, "deadline of a unary call whose client sets none")
	fs.IntVar(&o.maxMsgBytes, "max-msg-bytes", server.DefaultMaxRecvBytes, "largest request message accepted")
	fs.IntVar(&o.maxStreamsPerRep, "max-streams-per-rep", server.DefaultMaxStreamsPerRep, "WatchAssignments streams one rep may hold open on this replica")
	fs.IntVar(&o.ackReplicas, "ack-replicas", 0, "replicas that must confirm each state change (Redis WAIT, within the call's deadline) before a call succeeds; unconfirmed, it answers UNAVAILABLE and may or may not persist (retrying with the same lead id is safe); 0: answer once the master has it (docs/deployment.md, \"What can be lost\")")
	fs.BoolVar(&o.allowPrivateSinks, "allow-private-sinks", false, "let webhook and Slack sinks reach loopback, private and link-local addresses (the cloud metadata address among them); off, such a delivery is dead-lettered with the reason")
	fs.BoolVar(&o.sinks, "sinks", true, "deliver the configs' sinks (webhooks, Slack, PostgreSQL archive) from this replica; every replica delivers a share")
	fs.StringVar(&o.redisCA, "redis-ca", "", "CA (PEM) that signs the Redis servers' certificates (rediss://, rediss+cluster://, rediss+sentinel:// URLs)")
	// LEADROUTER_<FLAG> (dashes as underscores) sets a flag's default.
	fs.VisitAll(func(f *flag.Flag) {
		env := "LEADROUTER_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(env); ok {
			_ = f.Value.Set(v)
			f.DefValue = v
		}
	})
	return &o, fs.Parse(os.Args[1:])
}

func run() error {
	o, err := parseFlags()
	if err != nil {
		return err
	}
	log, err := newLogger(o.logLevel, o.logFormat)
	if err != nil {
		return err
	}
	slog.SetDefault(log)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	sec, err := newSecurity(o, log)
	if err != nil {
		return err
	}
	go sec.reloadOnHUP(ctx)
	transport, err := sec.serverOption()
	if err != nil {
		return err
	}

	switch {
	case o.ackReplicas < 0:
		return fmt.Errorf("--ack-replicas: %d is negative", o.ackReplicas)
	case o.ackReplicas > 0 && o.redisURL == "":
		return errors.New("--ack-replicas: the embedded store has no replicas; pass --redis-url")
	}
	st, closeStore, err := openStore(ctx, o.redisURL, o.redisCA, log)
	if err != nil {
		return err
	}
	defer closeStore()
	st.SetAckReplicas(o.ackReplicas)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mopts := metrics.Options{WorkspaceLabel: o.metricsWorkspaceLabel}
	m := metrics.New(reg, mopts)
	st.Observe(m)
	go watchMemory(ctx, st, m, 15*time.Second)
	eng := engine.New(st, engine.WithLogger(log), engine.WithObserver(m), engine.WithMaxClockOffset(o.maxClockOffset))
	reg.MustRegister(metrics.NewStateCollector(eng, mopts, log))

	if o.config != "" {
		file, err := readConfigFile(o.config)
		if err != nil {
			return err
		}
		file.overwrite = o.configOverwrite
		if err := file.apply(ctx, eng, o.workspace, log); errors.Is(err, engine.ErrUnavailable) {
			// Redis is not there yet: serve (NOT_SERVING, UNAVAILABLE) and
			// apply the file once it answers.
			log.Warn("redis unreachable: --config is applied once it answers", "err", err)
			go file.applyWhenReachable(ctx, eng, o.workspace, log)
		} else if err != nil {
			return err
		}
	}

	lis, err := net.Listen("tcp", o.listen)
	if err != nil {
		return err
	}
	srv := server.New(eng, server.Options{Logger: log, Reflection: o.reflection, Metrics: m, Auth: sec.auth,
		DefaultDeadline: o.defaultDeadline, MaxRecvBytes: o.maxMsgBytes, MaxStreamsPerRep: o.maxStreamsPerRep,
		MaxConcurrentStreams: o.maxConcurrentStreams, MaxConnectionAge: o.maxConnectionAge,
		HealthInterval: o.healthInterval, ServerOptions: transport})
	healthCtx, stopHealth := context.WithCancel(ctx)
	defer stopHealth()
	go srv.WatchHealth(healthCtx)
	go eng.RunSweeper(healthCtx, o.sweepInterval)
	if o.sinks {
		host, _ := os.Hostname()
		runner := sinks.New(sinks.Options{Engine: eng, Queue: st, Consumer: fmt.Sprintf("%s-%d-%x", host, os.Getpid(), time.Now().UnixNano()&0xffffff),
			Metrics: m, Log: log, AllowPrivate: o.allowPrivateSinks})
		sinksDone := make(chan struct{})
		go func() { runner.Run(healthCtx); close(sinksDone) }()
		defer func() { stopHealth(); <-sinksDone }()
	}

	if o.metricsListen != "" {
		stopMetrics, err := serveMetrics(o.metricsListen, o.metricsTokenFile, reg, o.pprof, log)
		if err != nil {
			return err
		}
		defer stopMetrics()
	}

	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(lis) }()
	shutdownHTTP, httpAddr := func(context.Context) {}, ""
	if o.httpListen != "" {
		if shutdownHTTP, httpAddr, err = serveHTTP(ctx, o.httpListen, srv, sec, m, o.maxMsgBytes, log, errc); err != nil {
			return err
		}
	}
	log.Info("leadrouterd serving", "grpc", lis.Addr().String(), "http", httpAddr, "metrics", o.metricsListen)

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: streams end with UNAVAILABLE", "timeout", o.shutdownTimeout)
	stopHealth()
	sctx, cancel := context.WithTimeout(context.Background(), o.shutdownTimeout)
	defer cancel()
	// The HTTP listener stops taking requests and lets those in flight
	// finish while the gRPC server drains (its streams, the HTTP edge's
	// SSE streams among them, end with UNAVAILABLE).
	httpDone := make(chan struct{})
	go func() { defer close(httpDone); shutdownHTTP(sctx) }()
	srv.Shutdown(sctx)
	<-httpDone
	return nil
}

func openStore(ctx context.Context, url, ca string, log *slog.Logger) (*store.Redis, func(), error) {
	if url == "" {
		emb, err := store.StartEmbedded()
		if err != nil {
			return nil, nil, err
		}
		log.Warn("using the embedded in-memory store: all data is lost on exit; pass --redis-url for a real Redis",
			"addr", emb.Addr())
		return emb.Redis, func() { emb.Close() }, nil
	}
	octx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	r, err := store.Open(octx, url, store.OpenOptions{CAFile: ca})
	if errors.Is(err, engine.ErrUnavailable) {
		// Start all the same: health says NOT_SERVING and calls answer
		// UNAVAILABLE until Redis answers, with no restart (an orchestrator
		// would otherwise crash-loop the replica with growing back-off).
		if r, err = store.OpenLazy(url, store.OpenOptions{CAFile: ca}); err != nil {
			return nil, nil, err
		}
		log.Warn("redis unreachable at start: serving NOT_SERVING until it answers", "url", redactURL(url))
		go func() {
			for ctx.Err() == nil {
				pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				perr := r.Ping(pctx)
				cancel()
				if perr == nil {
					log.Info("redis reachable", "url", redactURL(url))
					checkDurability(ctx, r, log)
					return
				}
				select {
				case <-ctx.Done():
				case <-time.After(time.Second):
				}
			}
		}()
		return r, func() { r.Close() }, nil
	}
	if err != nil {
		return nil, nil, err
	}
	log.Info("using redis", "url", redactURL(url))
	checkDurability(octx, r, log)
	return r, func() { r.Close() }, nil
}

// checkDurability warns about Redis settings that can lose or duplicate
// assignments.
func checkDurability(ctx context.Context, r *store.Redis, log *slog.Logger) {
	d, err := r.Durability(ctx)
	switch {
	case err != nil:
		log.Warn("could not read the Redis memory and persistence settings", "err", err)
	case d.Evicts():
		log.Warn("this Redis evicts keys when full (maxmemory-policy "+d.EvictionPolicy+"): set maxmemory-policy noeviction, or an evicted lead could be assigned twice",
			"maxmemory", d.MaxMemory, "policy", d.EvictionPolicy)
	case !d.AppendOnly:
		log.Info("this Redis keeps no append-only file: a Redis restart loses assignments, queues and deadlines (set appendonly yes)")
	}
	if err == nil && d.MaxMemory == 0 {
		log.Warn("this Redis has no maxmemory: it may fill its host; set maxmemory (with maxmemory-policy noeviction) so a full Redis refuses writes and the LeadrouterRedisMemoryHigh alert can warn first")
	}
}

// watchMemory records the Redis's memory in the metrics every interval.
func watchMemory(ctx context.Context, r *store.Redis, m *metrics.Metrics, every time.Duration) {
	for {
		rctx, cancel := context.WithTimeout(ctx, every)
		d, err := r.Durability(rctx)
		cancel()
		if err == nil {
			m.RedisMemory(d.UsedMemory, d.UsedOf)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
	}
}

// configFile is a --config file read at start.
type configFile struct {
	path      string
	cfg       *engine.Config
	hash      string // SHA-256 of its body, hex
	overwrite bool   // --config-overwrite
}

// readConfigFile reads and validates a --config file: a bad file stops
// leadrouterd at start, whether or not Redis is reachable.
func readConfigFile(path string) (*configFile, error) {
	body, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	cfg, err := engine.ParseConfigYAML(bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	sum := sha256.Sum256(body)
	return &configFile{path: path, cfg: cfg, hash: hex.EncodeToString(sum[:])}, nil
}

// applyWhenReachable applies the file once Redis answers, trying every
// second. A file that may not be applied then ends leadrouterd, as it
// would have at start.
func (f *configFile) applyWhenReachable(ctx context.Context, eng *engine.Engine, ws string, log *slog.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
		err := f.apply(ctx, eng, ws, log)
		if err == nil || ctx.Err() != nil {
			// Applied, or shutting down: a shutdown that cuts the apply
			// short is not the file's fault.
			return
		}
		if !errors.Is(err, engine.ErrUnavailable) {
			log.Error("--config could not be applied", "file", f.path, "err", err)
			os.Exit(1)
		}
	}
}

// apply applies the file unless that would revert a config applied
// through the API since (engine.ApplyConfigFile): every replica starts
// with the same --config, only the first applies it, and a restart never
// silently undoes an operator's change.
func (f *configFile) apply(ctx context.Context, eng *engine.Engine, ws string, log *slog.Logger) error {
	did, v, err := eng.ApplyConfigFile(ctx, ws, f.cfg, f.hash, f.overwrite)
	switch {
	case errors.Is(err, engine.ErrConfigDiverged):
		log.Error("--config not applied: it would revert a config applied through the API", "file", f.path, "workspace", ws,
			"version", v, "err", err)
		return fmt.Errorf("%s: %w", f.path, err)
	case err != nil:
		return fmt.Errorf("%s: %w", f.path, err)
	case did == engine.FileUnchanged:
		log.Warn("--config unchanged since it was applied; keeping the config applied through the API since", "file", f.path,
			"workspace", ws, "version", v)
	case did == engine.FileCurrent:
		log.Info("routing config already current", "file", f.path, "workspace", ws, "version", v)
	default:
		log.Info("routing config loaded", "file", f.path, "workspace", ws, "version", v, "overwrite", f.overwrite)
	}
	return nil
}

// serveMetrics serves reg on /metrics and, with withPprof, the runtime
// profiles under /debug/pprof/ (opt-in: profiles reveal internals, so keep
// the metrics listener on a private address). With tokenFile every path
// requires that bearer token.
// serveHTTP serves the HTTP edge (httpapi) on addr, over TLS unless
// --insecure, until the returned shutdown (which lets requests in flight
// finish until its context ends); it returns the address it listens on. A
// failed Serve goes to errc.
func serveHTTP(ctx context.Context, addr string, srv *server.Server, sec *security, m *metrics.Metrics, maxBody int, log *slog.Logger, errc chan<- error) (func(context.Context), string, error) {
	conn, err := srv.InProcess()
	if err != nil {
		return nil, "", err
	}
	h, err := httpapi.New(ctx, httpapi.Options{Conn: conn, Routing: srv.DirectRouting(), Admin: srv.DirectAdmin(), MaxBodyBytes: maxBody, Intakes: srv, Metrics: m, Logger: log})
	if err != nil {
		return nil, "", err
	}
	tlsCfg, err := sec.tlsConfig()
	if err != nil {
		return nil, "", err
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", fmt.Errorf("--http-listen: %w", err)
	}
	hs := httpapi.Server(h, log)
	hs.TLSConfig = tlsCfg
	go func() {
		var err error
		if tlsCfg != nil {
			err = hs.ServeTLS(lis, "", "")
		} else {
			err = hs.Serve(lis)
		}
		if !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("http: %w", err)
		}
	}()
	return func(ctx context.Context) {
		if hs.Shutdown(ctx) != nil {
			_ = hs.Close()
		}
		_ = conn.Close()
	}, lis.Addr().String(), nil
}

func serveMetrics(addr, tokenFile string, reg *prometheus.Registry, withPprof bool, log *slog.Logger) (func(), error) {
	mux := http.NewServeMux()
	var handler http.Handler = mux
	if tokenFile != "" {
		raw, err := os.ReadFile(tokenFile)
		if err != nil {
			return nil, fmt.Errorf("metrics token: %w", err)
		}
		token := strings.TrimSpace(string(raw))
		if token == "" {
			return nil, fmt.Errorf("metrics token: %s is empty", tokenFile)
		}
		handler = requireBearer(token, mux)
	}
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		Registry: reg, ErrorHandling: promhttp.ContinueOnError, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}))
	if withPprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		log.Info("pprof enabled on the metrics listener", "path", "/debug/pprof/")
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics listener: %w", err)
	}
	hs := &http.Server{Handler: handler, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := hs.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server", "err", err)
		}
	}()
	return func() { hs.Close() }, nil
}

// requireBearer answers 401 to a request without the token.
func requireBearer(token string, next http.Handler) http.Handler {
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="leadrouter metrics"`)
			http.Error(w, "bearer token required (--metrics-token-file)", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func newLogger(level, format string) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("--log-format: %q is not text or json", format)
}

// redactURL hides a password in a Redis URL for logging.
func redactURL(u string) string {
	if base, _, ok := strings.Cut(u, "?"); ok {
		u = base + "?***" // sentinel_password=... and the like
	}
	at := strings.LastIndex(u, "@")
	scheme := strings.Index(u, "://")
	if at < 0 || scheme < 0 {
		return u
	}
	return u[:scheme+3] + "***" + u[at:]
}
