package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/leadrouter/leadrouter/engine"
)

// DefaultPrefix starts every key the store writes.
const DefaultPrefix = "lr"

// Redis is engine.Store on Redis (a server, a cluster, or the embedded
// miniredis).
type Redis struct {
	client redis.UniversalClient
	// readers is the client of blocking event reads (ReadFeeds), with a
	// pool of its own: a reader waiting on a quiet stream never holds a
	// connection a request needs.
	readers redis.UniversalClient
	prefix  string
	obs     engine.Observer
	// registered holds the workspaces this store has seen registered or
	// registered itself since it started (LoadConfig).
	registered sync.Map
	// ackReplicas is how many replicas must confirm each state-changing
	// script before the call succeeds (SetAckReplicas; 0: none).
	ackReplicas int
	// recentKept is how many of a workspace's newest records the recent
	// index keeps (engine.RecentLeadsKept; tests set fewer).
	recentKept int
}

// SetAckReplicas makes every state-changing script call wait (WAIT) until
// n replicas have its writes, within the call's deadline; a call they do
// not confirm in time answers engine.ErrUnavailable, saying the write may or
// may not persist. 0 (the default) waits for none. Set it before use.
func (s *Redis) SetAckReplicas(n int) { s.ackReplicas = n }

var _ engine.Store = (*Redis)(nil)

// New returns a store on an existing client. prefix "" means DefaultPrefix.
// Blocking event reads get a client of their own with the same options
// (readersOf).
func New(client redis.UniversalClient, prefix string) *Redis {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	return &Redis{client: client, readers: readersOf(client), prefix: prefix, obs: engine.Nop{}, recentKept: engine.RecentLeadsKept}
}

// readerPool is the pool size, per node, of the readers' client. On one
// server a replica's readers need a few connections whatever the number of
// watched workspaces (engine.Watcher reads them together); on a cluster
// one blocking read serves the workspaces of one hash slot, so a replica
// watching n workspaces holds up to n of them, spread over the masters.
// Connections are opened when needed and closed after readerIdle.
const (
	readerPool = 1024
	readerIdle = time.Minute
)

// readersOf returns a client like c for blocking reads, with a pool of its
// own. A client of another kind than one server or a cluster is shared.
func readersOf(c redis.UniversalClient) redis.UniversalClient {
	switch c := c.(type) {
	case *redis.ClusterClient:
		o := *c.Options()
		o.PoolSize, o.MinIdleConns, o.ConnMaxIdleTime = readerPool, 0, readerIdle
		rc := redis.NewClusterClient(&o)
		rc.AddHook(slotReloader{rc})
		return rc
	case *redis.Client:
		o := *c.Options()
		o.PoolSize, o.MinIdleConns, o.ConnMaxIdleTime = readerPool, 0, readerIdle
		o.PushNotificationProcessor = nil // the client's own, made by NewClient
		return redis.NewClient(&o)
	}
	return c
}

// Observe sets who is told of the facts scripts produce and of failed
// calls (default: nobody). Set it before the store is used.
func (s *Redis) Observe(o engine.Observer) { s.obs = o }

// OpenOptions are what a Redis URL cannot say.
type OpenOptions struct {
	// CAFile is a PEM bundle of the CAs that sign the Redis servers'
	// certificates (TLS URLs; default: the system's roots).
	CAFile string
	// PoolSize is the connection pool size of each Redis node (default:
	// go-redis's, 10 per CPU).
	PoolSize int
}

// Open connects to the Redis at a URL of any form NewClient accepts (one
// server, a cluster, or Sentinel; user and password in the URL for AUTH
// or an ACL user) and checks that it answers: on a cluster, every master.
func Open(ctx context.Context, url string, o OpenOptions) (*Redis, error) {
	s, err := OpenLazy(url, o)
	if err != nil {
		return nil, err
	}
	if err := s.Ping(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// OpenLazy is Open without the check: the store connects when it is first
// used, and its calls fail with engine.ErrUnavailable until Redis answers.
// Only a malformed URL or CA file is an error.
func OpenLazy(url string, o OpenOptions) (*Redis, error) {
	client, err := NewClient(url, o)
	if err != nil {
		return nil, err
	}
	// The readers' client is made from the URL too: copied options would
	// share a Sentinel client's failover dialer and the URL's own pool
	// settings are what the readers' client should start from.
	o.PoolSize = readerPool
	readers, err := NewClient(url, o)
	if err != nil {
		client.Close()
		return nil, err
	}
	return &Redis{client: client, readers: readers, prefix: DefaultPrefix, obs: engine.Nop{}}, nil
}

// Durability is what a Redis server says about keeping what it is given.
type Durability struct {
	// UsedMemory is used_memory, bytes, and UsedOf that server's
	// maxmemory (0: no limit): on a cluster, the master nearest its limit.
	UsedMemory, UsedOf int64
	MaxMemory          int64  // bytes; 0: no limit
	EvictionPolicy     string // maxmemory-policy
	AppendOnly         bool   // AOF persistence on
}

// Evicts reports whether the server may drop keys when it is full: any
// policy but noeviction, once maxmemory is set. An evicted lead record
// would let a retried lead be assigned twice.
func (d Durability) Evicts() bool { return d.MaxMemory > 0 && d.EvictionPolicy != "noeviction" }

// fuller reports whether d's server is nearer its maxmemory than o's
// (by used memory when neither has one).
func (d Durability) fuller(o Durability) bool {
	if d.MaxMemory > 0 && o.UsedOf > 0 {
		return float64(d.UsedMemory)/float64(d.MaxMemory) > float64(o.UsedMemory)/float64(o.UsedOf)
	}
	return d.UsedMemory > o.UsedMemory
}

// Durability reads the server's memory and persistence settings from INFO
// (which managed Redis services allow where CONFIG is refused). On a
// cluster it reads every master and reports the weakest: eviction if any
// master evicts, append-only only if all keep one.
func (s *Redis) Durability(ctx context.Context) (Durability, error) {
	c, ok := s.client.(*redis.ClusterClient)
	if !ok {
		return s.durability(ctx, s.client)
	}
	var mu sync.Mutex
	all := Durability{AppendOnly: true}
	err := c.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
		d, err := s.durability(ctx, m)
		mu.Lock()
		defer mu.Unlock()
		if d.Evicts() || !all.Evicts() && d.MaxMemory > all.MaxMemory {
			all.MaxMemory, all.EvictionPolicy = d.MaxMemory, d.EvictionPolicy
		}
		// The fullest master's memory: the first to refuse writes.
		if d.fuller(all) {
			all.UsedMemory, all.UsedOf = d.UsedMemory, d.MaxMemory
		}
		all.AppendOnly = all.AppendOnly && d.AppendOnly
		return err
	})
	if err != nil {
		return Durability{}, err
	}
	return all, nil
}

func (s *Redis) durability(ctx context.Context, c redis.Cmdable) (Durability, error) {
	info, err := c.Info(ctx, "memory", "persistence").Result()
	if err != nil {
		return Durability{}, s.fail("info", err)
	}
	var d Durability
	for _, line := range strings.Split(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok {
			continue
		}
		switch k {
		case "maxmemory":
			d.MaxMemory, _ = strconv.ParseInt(v, 10, 64)
		case "used_memory":
			d.UsedMemory, _ = strconv.ParseInt(v, 10, 64)
		case "maxmemory_policy":
			d.EvictionPolicy = v
		case "aof_enabled":
			d.AppendOnly = v == "1"
		}
	}
	d.UsedOf = d.MaxMemory
	return d, nil
}

// Prefix returns the prefix of every key the store writes.
func (s *Redis) Prefix() string { return s.prefix }

// Client returns the underlying client (tests seed and inspect keys with it).
func (s *Redis) Client() redis.UniversalClient { return s.client }

// Close closes the clients.
func (s *Redis) Close() error {
	err := s.client.Close()
	if s.readers != s.client {
		err = errors.Join(err, s.readers.Close())
	}
	return err
}

func (s *Redis) keys(ws string) keys { return keysFor(s.prefix, ws) }

// PingShards implements engine.ShardedStore: on a cluster, every master
// is pinged; on one server, that server.
func (s *Redis) PingShards(ctx context.Context) (down, total int) {
	c, ok := s.client.(*redis.ClusterClient)
	if !ok {
		if s.Ping(ctx) != nil {
			return 1, 1
		}
		return 0, 1
	}
	var mu sync.Mutex
	err := c.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
		err := m.Ping(ctx).Err()
		mu.Lock()
		total++
		if err != nil {
			down++
		}
		mu.Unlock()
		return nil
	})
	if err != nil || total == 0 { // the slot map itself could not be read
		s.fail("ping", err)
		return 1, 1
	}
	if down > 0 {
		s.fail("ping", fmt.Errorf("%d of %d masters do not answer", down, total))
	}
	return down, total
}

// Ping reports whether Redis answers. On a cluster every master must
// answer (Open's check); the health check uses PingShards, which serves
// while any master answers.
func (s *Redis) Ping(ctx context.Context) error {
	if !s.cluster() {
		return s.fail("ping", s.client.Ping(ctx).Err())
	}
	if down, total := s.PingShards(ctx); down > 0 {
		return fmt.Errorf("%w: ping: %d of %d masters do not answer", engine.ErrUnavailable, down, total)
	}
	return nil
}

// Time implements engine.Store with TIME. On a cluster go-redis sends it to
// the master of a random slot: while a master is down, most health checks
// still measure the clock, and one that fails leaves the verdict as it was.
func (s *Redis) Time(ctx context.Context) (time.Time, error) {
	t, err := s.client.Time(ctx).Result()
	return t, s.fail("time", err)
}

// LoadConfig implements engine.Store. While a config is being applied it
// waits for the apply to finish, and finishes it itself when its applier
// stopped (finishApply).
func (s *Redis) LoadConfig(ctx context.Context, ws string) (*engine.StoredConfig, error) {
	k := s.keys(ws)
	for wait := applyWait; ; wait = min(2*wait, applyWaitMax) {
		var hm *redis.SliceCmd
		var body *redis.StringCmd
		// One transaction: the body is the one of the version read.
		_, err := s.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
			hm = p.HMGet(ctx, k.config(), "version", "body", "applied_at", "id", "lease", personKeyField)
			body = p.Get(ctx, k.configBody())
			return nil
		})
		if err != nil && !errors.Is(err, redis.Nil) {
			return nil, s.fail("load_config", err)
		}
		vals := hm.Val()
		if b, err := body.Result(); err == nil {
			vals[1] = b
		}
		id, _ := vals[3].(string)
		if !strings.HasPrefix(id, applyingPrefix) {
			sc, err := parseConfig(ws, vals)
			if err == nil && sc.PersonKey == "" {
				// A workspace applied before person hashes existed gets
				// its key now; whichever replica sets it first wins.
				if sc.PersonKey, err = s.ensurePersonKey(ctx, k); err != nil {
					return nil, err
				}
			}
			if err == nil {
				// A workspace in use is on the sweeper's list, whatever
				// happened to its registration (a master that lost it in a
				// failover): once per store, the first time it loads.
				// Not a reason to fail the load: the list may be on a
				// master that is down; the next load tries again.
				if _, seen := s.registered.Load(ws); !seen {
					_ = s.register(ctx, ws)
				}
			}
			return sc, err
		}
		// An apply is under way: wait for its commit, or carry it on once
		// its applier's lease has run out.
		if lease, _ := vals[4].(string); msTime(lease).After(time.Now()) {
			select {
			case <-ctx.Done():
				return nil, fmt.Errorf("%w: a config apply is under way: %v", engine.ErrUnavailable, ctx.Err())
			case <-time.After(wait):
			}
			continue
		}
		if err := s.finishApply(ctx, ws); err != nil {
			return nil, err
		}
	}
}

// parseConfig reads the config hash's version, body, applied_at and id.
func parseConfig(ws string, vals []any) (*engine.StoredConfig, error) {
	if vals[0] == nil {
		return nil, fmt.Errorf("workspace %q: %w", ws, engine.ErrNoConfig)
	}
	sc := &engine.StoredConfig{Config: &engine.Config{}}
	sc.Version, _ = strconv.ParseInt(vals[0].(string), 10, 64)
	body, _ := vals[1].(string)
	if err := json.Unmarshal([]byte(body), sc.Config); err != nil {
		return nil, fmt.Errorf("workspace %q: corrupt config: %w", ws, err)
	}
	applied, _ := vals[2].(string)
	sc.AppliedAt = msTime(applied)
	sc.ID, _ = vals[3].(string)
	sc.PersonKey, _ = vals[5].(string)
	return sc, nil
}

// personKeyField is the config hash field holding the workspace's secret
// for person hashes (engine.Person): made by the first apply's commit
// (config_commit.lua), never changed after.
const personKeyField = "person_key"

// newPersonKey is a new workspace secret: 32 random bytes in hex.
func newPersonKey() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// ensurePersonKey gives a workspace without a person key one, unless
// another replica did first, and returns the key that holds.
func (s *Redis) ensurePersonKey(ctx context.Context, k keys) (string, error) {
	c := s.client
	if _, err := c.HSetNX(ctx, k.config(), personKeyField, newPersonKey()).Result(); err != nil {
		return "", s.fail("person_key", err)
	}
	key, err := c.HGet(ctx, k.config(), personKeyField).Result()
	return key, s.fail("person_key", err)
}

// nonce returns 8 random bytes in hex: what makes a config id unique.
func nonce() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// encodeProfile writes a rep profile as lib_eligibility.lua reads it.
func encodeProfile(p *engine.RepProfile) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d|%d|%s|", p.MaxOpen, p.DailyCap, p.Zone)
	for i, iv := range p.Week {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%d-%d", iv[0], iv[1])
	}
	b.WriteByte('|')
	for i, r := range p.OutOfOffice {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%d-%d", r[0], r[1])
	}
	return b.String()
}

func encodeOffsets(z *engine.ZoneOffsets) string {
	parts := make([]string, len(z.From))
	for i := range z.From {
		parts[i] = fmt.Sprintf("%d:%d", z.From[i], z.Offsets[i])
	}
	return strings.Join(parts, ",")
}

func scoreArg(l *engine.Lead) int32 {
	if l.Score == nil {
		return -1
	}
	return *l.Score
}

func msOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// decideArgs is lead_decide.lua's request.
type decideArgs struct {
	base
	Lead       string      `json:"lead"`
	Queued     string      `json:"queued"`
	Unroutable string      `json:"unroutable"`
	Person     string      `json:"person"`
	Sticky     int64       `json:"sticky"`
	Owner      string      `json:"owner"`
	Domain     string      `json:"domain"`
	Score      int32       `json:"score"`
	Expire     int64       `json:"expire"`
	Submitted  int64       `json:"submitted"`
	Quota      int64       `json:"quota,omitempty"`
	Received   string      `json:"received,omitempty"` // the history's received line's detail
	Recent     int         `json:"recent"`
	Targets    []targetArg `json:"targets,omitempty"`
}

// Decide implements engine.Store with lead_decide.lua: one round trip.
func (s *Redis) Decide(ctx context.Context, d *engine.DecideRequest) (*engine.Outcome, error) {
	k := s.keys(d.Workspace)
	head, err := encodeHead(d)
	if err != nil {
		return nil, err
	}
	leadKey := k.lead(d.Lead.ID)
	keys := append(k.common(), leadKey, k.stickyOr(d.Person, leadKey), k.people(), k.recent())
	req := decideArgs{
		base: base{Cfg: d.ConfigID, Now: d.ReceivedAt.UnixMilli(), Dry: d.DryRun, Zones: zonesArg(d.Local), Retain: d.Retain.Milliseconds()},
		Lead: d.Lead.ID, Queued: d.QueuedReason, Unroutable: d.UnroutableReason,
		Person: d.Person, Sticky: d.StickyWindow.Milliseconds(), Owner: d.Owner, Domain: d.Domain,
		Score: scoreArg(d.Lead), Expire: msOrZero(d.ExpireAt), Submitted: d.Lead.SubmittedAt.UnixMilli(),
		Quota: d.Quota, Received: d.ReceivedNote, Recent: s.recentKept,
	}
	keys, req.Targets = targetArgs(k, keys, d.Targets)
	r, err := s.call(ctx, d.Workspace, leadDecide, keys, req, head)
	if err != nil {
		return nil, err
	}
	dr := decodeDecide(r)
	switch dr.code {
	case codeStale:
		return nil, engine.ErrStaleConfig
	case codeDuplicate:
		a, err := parseRecord(d.Lead.ID, pairs(dr.existing))
		if err != nil {
			return nil, err
		}
		return &engine.Outcome{Assignment: a, Duplicate: true}, nil
	case codeQuota:
		return nil, fmt.Errorf("workspace %q holds %d lead records, its settings.max_stored_leads quota of %d: %w (closed and unroutable leads are removed after settings.retain_closed)",
			d.Workspace, dr.stored, d.Quota, engine.ErrQuota)
	case codeOK:
	default:
		return nil, r.unexpected(leadDecide)
	}
	// A new record: the reply leaves out pb, which holds what this call
	// sent.
	a := recordFields(d.Lead.ID, dr.record.get, d.View == engine.ViewFull)
	a.Lead = *d.Lead
	if len(a.Lead.Attributes) == 0 {
		a.Lead.Attributes = nil
	}
	a.Trace.Rules = d.Rules
	a.RuleID, a.ReceivedAt, a.ConfigVersion = d.RuleID, time.UnixMilli(d.ReceivedAt.UnixMilli()).UTC(), d.ConfigVersion
	return &engine.Outcome{Assignment: a, Backlog: dr.backlog}, nil
}

// Assignment implements engine.Store.
func (s *Redis) Assignment(ctx context.Context, ws, leadID string) (*engine.Assignment, error) {
	f, err := s.client.HGetAll(ctx, s.keys(ws).lead(leadID)).Result()
	if err != nil {
		return nil, s.fail("get_assignment", err)
	}
	if len(f) == 0 {
		return nil, fmt.Errorf("lead %q: %w", leadID, engine.ErrNotFound)
	}
	return parseRecord(leadID, f)
}

// SetRepStatus implements engine.Store with rep_set_status.lua.
func (s *Redis) SetRepStatus(ctx context.Context, ws, configID, repID string, st engine.RepStatus, pools []string, now time.Time) (engine.RepStatus, error) {
	k := s.keys(ws)
	r, err := s.call(ctx, ws, repSetStatus, k.targets(k.common(), pools), repArgs{base: at(configID, now.UnixMilli()),
		Rep: repID, Status: string(st), Pools: pools})
	if err != nil {
		return "", err
	}
	switch st := decodeStatus(r); st.code {
	case codeStale:
		return "", engine.ErrStaleConfig
	case codeOK:
		return engine.RepStatus(st.status), nil
	}
	return "", r.unexpected(repSetStatus)
}

// RepRuntime implements engine.Store in one pipelined round trip.
func (s *Redis) RepRuntime(ctx context.Context, ws string, repIDs []string, days []int64) ([]engine.RepRuntime, error) {
	out := make([]engine.RepRuntime, len(repIDs))
	if len(repIDs) == 0 {
		return out, nil
	}
	k := s.keys(ws)
	pipe := s.client.Pipeline()
	presence := pipe.HMGet(ctx, k.presence(), repIDs...)
	changed := pipe.HMGet(ctx, k.statusChanged(), repIDs...)
	assigned := pipe.HMGet(ctx, k.assigned(), repIDs...)
	last := pipe.HMGet(ctx, k.lastAssigned(), repIDs...)
	open := pipe.HMGet(ctx, k.open(), repIDs...)
	daily := pipe.HMGet(ctx, k.daily(), repIDs...)
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, s.fail("rep_runtime", err)
	}
	str := func(v any) string { s, _ := v.(string); return s }
	num := func(v any) int64 { n, _ := strconv.ParseInt(str(v), 10, 64); return n }
	for i, id := range repIDs {
		out[i] = engine.RepRuntime{
			RepID:           id,
			Status:          engine.RepStatus(str(presence.Val()[i])),
			StatusChangedAt: msTime(str(changed.Val()[i])),
			LastAssignedAt:  msTime(str(last.Val()[i])),
			AssignedTotal:   num(assigned.Val()[i]),
			Open:            num(open.Val()[i]),
		}
		if day, count, ok := strings.Cut(str(daily.Val()[i]), ":"); ok && day == strconv.FormatInt(days[i], 10) {
			out[i].AssignedToday, _ = strconv.ParseInt(count, 10, 64)
		}
	}
	return out, nil
}

// QueuedLeads implements engine.Store.
func (s *Redis) QueuedLeads(ctx context.Context, ws, poolID string, offset, limit int) ([]string, error) {
	ids, err := s.client.ZRange(ctx, s.keys(ws).queue(poolID), int64(offset), int64(offset+limit)-1).Result()
	return ids, s.fail("queued_leads", err)
}

// QueuedPools implements engine.Store.
func (s *Redis) QueuedPools(ctx context.Context, ws string) ([]string, error) {
	pools, err := s.client.SMembers(ctx, s.keys(ws).queuedPools()).Result()
	return pools, s.fail("queued_pools", err)
}

// queuePriorityShift mirrors PRIORITY_SHIFT in lib_place.lua: a queued
// lead's score is (100 - lead score) * 2^40 + its arrival number.
const queuePriorityShift = 1 << 40

// QueueStats implements engine.Store: ZCARD of each non-empty queue, and the
// queued_at of the lead with the lowest arrival number among the first
// scan members (in priority order; all of them in any queue that short).
func (s *Redis) QueueStats(ctx context.Context, ws string, scan int) (map[string]engine.QueueStat, error) {
	k := s.keys(ws)
	pools, err := s.QueuedPools(ctx, ws)
	if err != nil || len(pools) == 0 {
		return nil, err
	}
	pipe := s.client.Pipeline()
	counts := make([]*redis.IntCmd, len(pools))
	heads := make([]*redis.ZSliceCmd, len(pools))
	for i, p := range pools {
		counts[i] = pipe.ZCard(ctx, k.queue(p))
		heads[i] = pipe.ZRangeWithScores(ctx, k.queue(p), 0, int64(scan)-1)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, s.fail("queue_stats", err)
	}
	stats := make(map[string]engine.QueueStat, len(pools))
	oldest := make([]*redis.StringCmd, len(pools))
	pipe = s.client.Pipeline()
	for i, p := range pools {
		stats[p] = engine.QueueStat{Queued: counts[i].Val()}
		first, firstArrival := "", int64(-1)
		for _, z := range heads[i].Val() {
			if a := int64(z.Score) % queuePriorityShift; firstArrival < 0 || a < firstArrival {
				first, firstArrival = z.Member.(string), a
			}
		}
		if first != "" {
			oldest[i] = pipe.HGet(ctx, k.lead(first), "queued_at")
		}
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, s.fail("queue_stats", err)
	}
	for i, p := range pools {
		if oldest[i] != nil {
			st := stats[p]
			st.OldestQueuedAt = msTime(oldest[i].Val())
			stats[p] = st
		}
	}
	return stats, nil
}

// Workspaces implements engine.Store.
func (s *Redis) Workspaces(ctx context.Context) ([]string, error) {
	ws, err := s.client.SMembers(ctx, workspacesKey(s.prefix)).Result()
	return ws, s.fail("workspaces", err)
}

// register adds ws to the workspace list.
func (s *Redis) register(ctx context.Context, ws string) error {
	if err := s.client.SAdd(ctx, workspacesKey(s.prefix), ws).Err(); err != nil {
		return s.fail("register_workspace", err)
	}
	s.registered.Store(ws, true)
	return nil
}

func (s *Redis) cluster() bool {
	_, ok := s.client.(*redis.ClusterClient)
	return ok
}

// scanPage is the COUNT of each SCAN step of RegisterWorkspaces: a step
// of 100 keys is well under a millisecond of Redis time, so the scan never
// holds up a decision for long.
const scanPage = 100

// RegisterWorkspaces implements engine.Store: a SCAN of every master for
// the workspaces' config keys, and an SADD of those the list lacks. Its
// cost grows with the number of keys (every lead record is a key), which
// is why the sweeper runs it only at start and every ten minutes; a
// workspace in use is registered again by its first config load on any
// replica anyway (LoadConfig).
func (s *Redis) RegisterWorkspaces(ctx context.Context) (int, error) {
	match := globEscape(s.prefix) + ":{*}:config"
	found := map[string]bool{}
	scan := func(ctx context.Context, c redis.Cmdable) error {
		it := c.ScanType(ctx, 0, match, scanPage, "hash").Iterator()
		for it.Next(ctx) {
			key := it.Val()
			if ws, ok := strings.CutSuffix(strings.TrimPrefix(key, s.prefix+":{"), "}:config"); ok && !strings.ContainsAny(ws, "{}") {
				found[ws] = true
			}
		}
		return it.Err()
	}
	var err error
	if c, ok := s.client.(*redis.ClusterClient); ok {
		var mu sync.Mutex
		err = c.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
			mu.Lock() // found is shared; one master's scan at a time
			defer mu.Unlock()
			return scan(ctx, m)
		})
	} else {
		err = scan(ctx, s.client)
	}
	if err != nil {
		return 0, s.fail("register_workspaces", err)
	}
	if len(found) == 0 {
		return 0, nil
	}
	members := make([]any, 0, len(found))
	for ws := range found {
		members = append(members, ws)
	}
	n, err := s.client.SAdd(ctx, workspacesKey(s.prefix), members...).Result()
	return int(n), s.fail("register_workspaces", err)
}

// globEscape quotes the characters SCAN's MATCH would read as a pattern.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// DrainQueue implements engine.Store with queue_drain.lua.
func (s *Redis) DrainQueue(ctx context.Context, ws, configID string, pool *engine.Pool, leadIDs []string, sticky time.Duration, local engine.LocalTimes, now time.Time) (*engine.DrainResult, error) {
	k := s.keys(ws)
	persons := make([]*redis.StringCmd, len(leadIDs))
	pipe := s.client.Pipeline()
	for i, id := range leadIDs {
		persons[i] = pipe.HGet(ctx, k.lead(id), "person")
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, s.fail("drain_queue", err)
	}
	keys := k.target(k.common(), pool.ID)
	req := drainArgs{base: base{Cfg: configID, Now: now.UnixMilli(), Zones: zonesArg(local)}, Pool: pool.ID,
		Policy: policyOf(pool), Sticky: sticky.Milliseconds(), Leads: make([]drainLead, len(leadIDs))}
	for i, id := range leadIDs {
		person := persons[i].Val()
		keys = append(keys, k.lead(id), k.stickyOr(person, k.lead(id)))
		req.Leads[i] = drainLead{ID: id, Person: person}
	}
	r, err := s.call(ctx, ws, queueDrain, keys, req)
	if err != nil {
		return nil, err
	}
	switch d := decodeDrain(r); d.code {
	case codeStale:
		return nil, engine.ErrStaleConfig
	case codeOK:
		return &engine.DrainResult{Blocked: d.blocked, Skipped: d.skipped, Assigned: d.assigned}, nil
	}
	return nil, r.unexpected(queueDrain)
}

// CloseAssignment implements engine.Store with assignment_close.lua.
func (s *Redis) CloseAssignment(ctx context.Context, ws, configID string, c *engine.Closing, ranked []engine.Pool, now time.Time) (*engine.Assignment, error) {
	k := s.keys(ws)
	person, err := s.client.HGet(ctx, k.lead(c.LeadID), "person").Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, s.fail("close", err)
	}
	keys := append(k.common(), k.lead(c.LeadID), k.stickyOr(person, k.lead(c.LeadID)), k.queueOr(c.Pool, k.lead(c.LeadID)))
	req := closeArgs{base: base{Cfg: configID, Now: now.UnixMilli(), Retain: c.Retain.Milliseconds()}, Lead: c.LeadID, Rep: c.RepID, Reason: c.Reason,
		Disposition: string(c.Disposition), ReasonCode: c.ReasonCode, Pool: c.Pool, Ranked: rankedArgs(ranked)}
	for _, p := range ranked {
		keys = append(keys, k.rank(p.ID))
	}
	r, err := s.call(ctx, ws, assignmentClose, keys, req)
	if err != nil {
		return nil, err
	}
	if err, ok := r.leadError(c.LeadID, engine.StateAssigned); ok {
		return nil, err
	}
	switch l := decodeLead(r); l.code {
	case codeOK:
		return parseRecord(c.LeadID, pairs(l.record))
	case codeConflict:
		return nil, fmt.Errorf("lead %q is already closed as %s: %w", c.LeadID, l.closed, engine.ErrNotAssigned)
	case codeMoved:
		return nil, fmt.Errorf("lead %q: %w", c.LeadID, engine.ErrConflict)
	case codeWrongState:
		return nil, fmt.Errorf("lead %q is %s: %w", c.LeadID, l.state, engine.ErrNotAssigned)
	}
	return nil, r.unexpected(assignmentClose)
}

// Accept implements engine.Store with offer_accept.lua.
func (s *Redis) Accept(ctx context.Context, ws, leadID, repID string, now time.Time) (*engine.Assignment, error) {
	k := s.keys(ws)
	r, err := s.call(ctx, ws, offerAccept, append(k.common(), k.lead(leadID)),
		leadRepArgs{base: at("", now.UnixMilli()), Lead: leadID, Rep: repID})
	if err != nil {
		return nil, err
	}
	if err, ok := r.leadError(leadID, engine.StateOffered); ok {
		return nil, err
	}
	switch l := decodeLead(r); l.code {
	case codeOK:
		return parseRecord(leadID, pairs(l.record))
	case codeExpired:
		return nil, &engine.OfferGoneError{LeadID: leadID, State: engine.State(l.state), ExpiredAt: l.at}
	case codeWrongState:
		return nil, &engine.OfferGoneError{LeadID: leadID, State: engine.State(l.state)}
	}
	return nil, r.unexpected(offerAccept)
}

// Contact implements engine.Store with lead_contact.lua.
func (s *Redis) Contact(ctx context.Context, ws, leadID, repID, channel string, contactAt, now time.Time) (*engine.Assignment, error) {
	k := s.keys(ws)
	r, err := s.call(ctx, ws, leadContact, append(k.common(), k.lead(leadID)),
		contactArgs{leadRepArgs: leadRepArgs{base: at("", now.UnixMilli()), Lead: leadID, Rep: repID},
			Channel: channel, At: contactAt.UnixMilli()})
	if err != nil {
		return nil, err
	}
	if err, ok := r.leadError(leadID, engine.StateAssigned); ok {
		return nil, err
	}
	switch l := decodeLead(r); l.code {
	case codeOK:
		return parseRecord(leadID, pairs(l.record))
	case codeBeforeSubmission:
		return nil, &engine.ValidationError{Violations: []engine.FieldViolation{{Field: "contacted_at",
			Description: "before the lead was submitted (" + l.at.Format(time.RFC3339) + ")"}}}
	case codeWrongState:
		if engine.State(l.state) == engine.StateClosed {
			return nil, fmt.Errorf("lead %q is closed: its record takes no more contacts: %w", leadID, engine.ErrNotAssigned)
		}
		return nil, fmt.Errorf("lead %q is %s; a contact needs an accepted assignment: %w", leadID, l.state, engine.ErrNotAssigned)
	}
	return nil, r.unexpected(leadContact)
}

// Reroute implements engine.Store with lead_reroute.lua.
func (s *Redis) Reroute(ctx context.Context, ws, configID string, r *engine.Rerouting, now time.Time) (*engine.RerouteResult, error) {
	k := s.keys(ws)
	a := r.Assignment
	leadKey := k.lead(a.LeadID)
	keys := append(k.common(), leadKey, k.stickyOr(a.Person, leadKey))
	req := rerouteArgs{base: base{Cfg: configID, Now: now.UnixMilli(), Zones: zonesArg(r.Local), Retain: r.Retain.Milliseconds()}, Lead: a.LeadID, Mode: string(r.Mode), Rep: r.RepID,
		Reason: r.Reason, Person: a.Person, Sticky: r.Sticky.Milliseconds(), Score: scoreArg(&a.Lead),
		First: r.FirstIndex, Queued: r.QueuedReason, Expire: msOrZero(r.ExpireAt), Ranked: rankedArgs(r.Ranked),
		Policy: policyOf(r.Policy), To: r.To}
	keys, req.Targets = targetArgs(k, keys, r.Targets)
	for _, p := range r.Ranked {
		keys = append(keys, k.rank(p.ID))
	}
	if r.Mode == engine.RerouteRequeue || r.Mode == engine.RerouteReassign {
		req.Was, req.Pool = string(a.State), a.PoolID
		queue := leadKey
		if a.State == engine.StateQueued {
			queue = k.queue(a.PoolID)
		}
		keys = append(keys, queue)
	}
	res, err := s.call(ctx, ws, leadReroute, keys, req)
	if err != nil {
		return nil, err
	}
	if err, ok := res.leadError(a.LeadID, engine.StateOffered); ok {
		return nil, err
	}
	switch p := decodeReroute(res); p.code {
	case codeOK:
		return &engine.RerouteResult{Done: true, State: engine.State(p.state), Backlog: p.backlog}, nil
	case codeClaimed, codeWrongState:
		return &engine.RerouteResult{State: engine.State(p.state)}, nil
	case codeMoved:
		return nil, fmt.Errorf("lead %q: %w", a.LeadID, engine.ErrConflict)
	}
	return nil, res.unexpected(leadReroute)
}

// EventsEpoch implements engine.Store.
func (s *Redis) EventsEpoch(ctx context.Context, ws string) (string, error) {
	k := s.keys(ws).eventsEpoch()
	if err := s.client.SetNX(ctx, k, nonce(), 0).Err(); err != nil {
		return "", s.fail("events_epoch", err)
	}
	epoch, err := s.client.Get(ctx, k).Result()
	return epoch, s.fail("events_epoch", err)
}

// LastEventID implements engine.Store.
func (s *Redis) LastEventID(ctx context.Context, ws string) (string, error) {
	msgs, err := s.client.XRevRangeN(ctx, s.keys(ws).events(), "+", "-", 1).Result()
	if err != nil {
		return "", s.fail("last_event", err)
	}
	if len(msgs) == 0 {
		return "0-0", nil
	}
	return msgs[0].ID, nil
}

// HasEvent implements engine.Store with XRANGE.
func (s *Redis) HasEvent(ctx context.Context, ws, id string) (bool, error) {
	msgs, err := s.client.XRangeN(ctx, s.keys(ws).events(), id, id, 1).Result()
	if err != nil {
		return false, s.fail("has_event", err)
	}
	return len(msgs) == 1, nil
}

// EventTallies implements engine.Store with XINFO STREAM, pipelined: its
// last-generated-id and entries-added (Redis 7). A history with no stream
// yet is "0-0" and 0; a store that does not count appends (the embedded
// one, Redis 6) reports a non-empty stream with nothing added, and is
// left out.
func (s *Redis) EventTallies(ctx context.Context, wss []string) (map[string]engine.EventTally, error) {
	cmds := make([]*redis.XInfoStreamCmd, len(wss))
	// Each command's own error is read below: a missing stream is one.
	_, _ = s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, ws := range wss {
			cmds[i] = p.XInfoStream(ctx, s.keys(ws).events())
		}
		return nil
	})
	out := make(map[string]engine.EventTally, len(wss))
	for i, ws := range wss {
		info, cerr := cmds[i].Result()
		switch {
		case cerr != nil && strings.Contains(cerr.Error(), "no such key"):
			out[ws] = engine.EventTally{Last: "0-0"}
		case cerr != nil:
			return nil, s.fail("event_tally", cerr)
		case info.EntriesAdded > 0 || info.Length == 0:
			out[ws] = engine.EventTally{Last: info.LastGeneratedID, Added: info.EntriesAdded}
		}
	}
	return out, nil
}

// EventsAfter implements engine.Store with XRANGE.
func (s *Redis) EventsAfter(ctx context.Context, ws, after string, limit int) ([]engine.Event, error) {
	msgs, err := s.client.XRangeN(ctx, s.keys(ws).events(), nextEventID(after), "+", int64(limit)).Result()
	if err != nil {
		return nil, s.fail("read_events", err)
	}
	out := make([]engine.Event, len(msgs))
	for i := range msgs {
		out[i] = eventOf(&msgs[i])
	}
	return out, nil
}

// FeedGroup implements engine.Store: on a cluster, the workspace's hash
// slot (one XREAD may name keys of one slot only); on one server, every
// workspace is in one group.
func (s *Redis) FeedGroup(ws string) string {
	if s.cluster() {
		return strconv.Itoa(int(hashSlot("{" + ws + "}")))
	}
	return ""
}

// ReadFeeds implements engine.Store: one XREAD BLOCK over every
// workspace's stream, on the readers' client.
func (s *Redis) ReadFeeds(ctx context.Context, after map[string]string, limit int, block time.Duration) (map[string][]engine.Event, error) {
	byKey := make(map[string]string, len(after))
	streams := make([]string, 0, 2*len(after))
	for ws := range after {
		k := s.keys(ws).events()
		byKey[k] = ws
		streams = append(streams, k)
	}
	for _, k := range streams[:len(after)] {
		streams = append(streams, after[byKey[k]])
	}
	res, err := s.readers.XRead(ctx, &redis.XReadArgs{Streams: streams, Count: int64(limit), Block: block}).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, s.fail("read_events", err)
	}
	out := make(map[string][]engine.Event, len(res))
	for _, st := range res {
		evs := make([]engine.Event, len(st.Messages))
		for i := range st.Messages {
			evs[i] = eventOf(&st.Messages[i])
		}
		out[byKey[st.Stream]] = evs
	}
	return out, nil
}

func eventOf(m *redis.XMessage) engine.Event {
	str := func(f string) string { v, _ := m.Values[f].(string); return v }
	return engine.Event{ID: m.ID, At: msTime(str("at")), Kind: engine.EventKind(str("kind")), LeadID: str("lead"),
		RepID: str("rep"), PoolID: str("pool"), Detail: engine.RenderNote(str("detail"))}
}

// nextEventID is the smallest id after id (XRANGE's start is inclusive).
func nextEventID(id string) string {
	ms, seq, ok := strings.Cut(id, "-")
	n, err := strconv.ParseUint(seq, 10, 64)
	if !ok || err != nil {
		return id
	}
	return ms + "-" + strconv.FormatUint(n+1, 10)
}

// TrimmedThrough implements engine.Store.
func (s *Redis) TrimmedThrough(ctx context.Context, ws string) (string, error) {
	id, err := s.client.Get(ctx, s.keys(ws).eventsTrimmed()).Result()
	if errors.Is(err, redis.Nil) {
		return "0-0", nil
	}
	return id, s.fail("events_trimmed", err)
}

// trimBatch is how many events TrimEvents removes for the length limit per
// script call: each call reads them (to learn the newest removed id), so a
// large surplus is removed in several short steps (each well under a
// millisecond of Redis time) rather than one long one.
const trimBatch = 100

// TrimEvents is TrimEventsFor without sinks (events_trim.lua): each call removes
// the events over the length limit (up to trimBatch of them) and those over
// the age limit, and remembers the newest it removed; it repeats while the
// history is over the length limit. Nothing to remove costs O(1).
func (s *Redis) TrimEvents(ctx context.Context, ws string, maxLen int64, maxAge time.Duration, now time.Time) (int64, error) {
	n, _, err := s.TrimEventsFor(ctx, ws, maxLen, maxAge, now, nil)
	return n, err
}

// RepConnection implements engine.Store with rep_connection.lua.
func (s *Redis) RepConnection(ctx context.Context, ws, configID, repID string, pools []string, connect bool, lostBefore, now time.Time) (engine.RepStatus, error) {
	k := s.keys(ws)
	mode := "lost"
	if connect {
		mode = "connect"
	}
	r, err := s.call(ctx, ws, repConnection, k.targets(append(k.common(), k.connected()), pools),
		connectionArgs{repArgs: repArgs{base: at(configID, now.UnixMilli()), Rep: repID, Pools: pools},
			Mode: mode, Cutoff: msOrZero(lostBefore)})
	if err != nil {
		return "", err
	}
	switch st := decodeStatus(r); st.code {
	case codeStale:
		return "", engine.ErrStaleConfig
	case codeOK:
		return engine.RepStatus(st.status), nil
	}
	return "", r.unexpected(repConnection)
}

// IndexPools implements engine.Store with pool_index.lua, at most
// indexPoolsPerCall pools a call, as an apply's steps are bounded.
func (s *Redis) IndexPools(ctx context.Context, ws, configID string, pools []string, repair bool, now time.Time) (built, moved int, err error) {
	k := s.keys(ws)
	mode := "build"
	if repair {
		mode = "repair"
	}
	for len(pools) > 0 {
		chunk := pools[:min(len(pools), indexPoolsPerCall)]
		pools = pools[len(chunk):]
		r, err := s.call(ctx, ws, poolIndex, k.targets(k.common(), chunk),
			indexArgs{base: at(configID, now.UnixMilli()), Mode: mode, Pools: chunk})
		if err != nil {
			return built, moved, err
		}
		m := decodeMoved(r)
		switch m.code {
		case codeStale:
			return built, moved, engine.ErrStaleConfig
		case codeOK:
		default:
			return built, moved, r.unexpected(poolIndex)
		}
		built, moved = built+m.filed, moved+m.moved
	}
	return built, moved, nil
}

// FileShifts implements engine.Store with rep_shift.lua, in calls of at
// most shiftRepsPerCall reps and shiftPoolsPerCall pools.
func (s *Redis) FileShifts(ctx context.Context, ws, configID string, reps []engine.ShiftFiling, now time.Time) (changed int, err error) {
	k := s.keys(ws)
	for len(reps) > 0 {
		args := shiftArgs{base: at(configID, now.UnixMilli())}
		number := map[string]int{}
		n := 0
		for ; n < len(reps) && n < shiftRepsPerCall; n++ {
			r := reps[n]
			if len(number)+len(r.Pools) > shiftPoolsPerCall && n > 0 {
				break
			}
			refs := make([]int, len(r.Pools))
			for i, p := range r.Pools {
				if number[p] == 0 {
					args.Pools = append(args.Pools, p)
					number[p] = len(args.Pools)
				}
				refs[i] = number[p]
			}
			args.Reps = append(args.Reps, [3]any{r.Rep, string(r.Standing), refs})
		}
		reps = reps[n:]
		r, err := s.call(ctx, ws, repShift, k.targets(k.common(), args.Pools), args)
		if err != nil {
			return changed, err
		}
		m := decodeMoved(r)
		switch m.code {
		case codeStale:
			return changed, engine.ErrStaleConfig
		case codeOK:
		default:
			return changed, r.unexpected(repShift)
		}
		changed += m.filed
	}
	return changed, nil
}

// shiftRepsPerCall and shiftPoolsPerCall bound one rep_shift call: a rep
// costs a few commands per pool it is in.
const (
	shiftRepsPerCall  = 500
	shiftPoolsPerCall = 64
)

// indexPoolsPerCall bounds the pools one pool_index call builds or
// repairs: the apply's pools per step (a pool's members cost there what
// they cost here).
const indexPoolsPerCall = applyPoolsPerStep

// Heartbeat implements engine.Store.
func (s *Redis) Heartbeat(ctx context.Context, ws string, repIDs []string, now time.Time, onlyNew bool) error {
	if len(repIDs) == 0 {
		return nil
	}
	members := make([]redis.Z, len(repIDs))
	for i, id := range repIDs {
		members[i] = redis.Z{Score: float64(now.UnixMilli()), Member: id}
	}
	key := s.keys(ws).connected()
	if onlyNew {
		return s.fail("heartbeat", s.client.ZAddNX(ctx, key, members...).Err())
	}
	return s.fail("heartbeat", s.client.ZAdd(ctx, key, members...).Err())
}

// LostConnections implements engine.Store.
func (s *Redis) LostConnections(ctx context.Context, ws string, before time.Time, limit int) ([]string, error) {
	reps, err := s.client.ZRangeArgs(ctx, redis.ZRangeArgs{Key: s.keys(ws).connected(), ByScore: true,
		Start: "-inf", Stop: strconv.FormatInt(before.UnixMilli(), 10), Count: int64(limit)}).Result()
	return reps, s.fail("lost_connections", err)
}

// DropTimer implements engine.Store with timer_drop.lua.
func (s *Redis) DropTimer(ctx context.Context, ws string, t engine.Timer) error {
	_, err := s.call(ctx, ws, timerDrop, []string{s.keys(ws).timers()},
		timerArgs{Member: t.Member(), Due: t.Due.UnixMilli()})
	return err
}

// DueWorkspaces implements engine.Store: a pipeline of one ZRANGEBYSCORE
// LIMIT 1 per workspace (on a cluster go-redis sends each master its part).
func (s *Redis) DueWorkspaces(ctx context.Context, wss []string, now time.Time) ([]string, error) {
	if len(wss) == 0 {
		return nil, nil
	}
	max := strconv.FormatInt(now.UnixMilli(), 10)
	cmds := make([]*redis.StringSliceCmd, len(wss))
	pipe := s.client.Pipeline()
	for i, ws := range wss {
		cmds[i] = pipe.ZRangeByScore(ctx, s.keys(ws).timers(), &redis.ZRangeBy{Min: "-inf", Max: max, Count: 1})
	}
	_, err := pipe.Exec(ctx)
	var due []string
	failed := 0
	for i, c := range cmds {
		if c.Err() != nil {
			failed++ // a master that is down: its workspaces wait for it
		} else if len(c.Val()) > 0 {
			due = append(due, wss[i])
		}
	}
	if failed == len(cmds) {
		return nil, s.fail("due_workspaces", err)
	}
	if failed > 0 {
		s.fail("due_workspaces", err) // counted; the others are swept
	}
	return due, nil
}

// claimScan is how many due timers timers_claim.lua looks at per timer it
// may claim: enough to pass over the batches other replicas hold.
const claimScan = 4

// ClaimTimers implements engine.Store with timers_claim.lua.
func (s *Redis) ClaimTimers(ctx context.Context, ws string, now time.Time, limit int, lease time.Duration) ([]engine.Timer, error) {
	k := s.keys(ws)
	r, err := s.call(ctx, ws, timersClaim, []string{k.timers(), k.timerClaims(), k.timerFails()},
		claimArgs{Now: now.UnixMilli(), Limit: limit, Scan: claimScan * limit, Lease: lease.Milliseconds()})
	if err != nil {
		return nil, err
	}
	t, err := decodeTimers(r)
	if err != nil || t.code != codeOK {
		return nil, r.unexpected(timersClaim)
	}
	out := make([]engine.Timer, len(t.claimed))
	for i, c := range t.claimed {
		kind, lead, _ := strings.Cut(c.member, "|") // the script returns "<kind>|<lead>" only
		out[i] = engine.Timer{Kind: engine.TimerKind(kind), LeadID: lead, Due: c.due, Attempts: c.attempts}
	}
	return out, nil
}

// maxParked bounds each workspace's parked timers.
const maxParked = 10_000

// RetryTimer implements engine.Store with timer_retry.lua.
func (s *Redis) RetryTimer(ctx context.Context, ws string, t engine.Timer, at time.Time, park bool) (int, error) {
	k := s.keys(ws)
	r, err := s.call(ctx, ws, timerRetry, []string{k.timers(), k.timerFails(), k.timersParked()},
		retryArgs{Member: t.Member(), Due: t.Due.UnixMilli(), Attempts: t.Attempts + 1,
			At: at.UnixMilli(), Park: park, MaxParked: maxParked})
	if err != nil {
		return 0, err
	}
	rr := decodeRetry(r)
	if rr.code != codeOK {
		return 0, r.unexpected(timerRetry)
	}
	return rr.n, nil
}

// TimerRecovered implements engine.Store.
func (s *Redis) TimerRecovered(ctx context.Context, ws string, t engine.Timer) error {
	return s.fail("timer_recovered", s.client.HDel(ctx, s.keys(ws).timerFails(), t.Member()).Err())
}

// PruneTimers implements engine.Store with timers_prune.lua, one HSCAN
// step per call.
func (s *Redis) PruneTimers(ctx context.Context, ws string) (int, error) {
	k := s.keys(ws)
	total, cursor := 0, "0"
	for {
		r, err := s.call(ctx, ws, timersPrune, []string{k.timers(), k.timerFails()}, pruneArgs{Cursor: cursor, Count: 200})
		if err != nil {
			return total, err
		}
		p := decodePrune(r)
		if p.code != codeOK {
			return total, r.unexpected(timersPrune)
		}
		total += p.n
		if cursor = p.cursor; cursor == "0" {
			return total, nil
		}
	}
}

// Escalate implements engine.Store with lead_escalate.lua.
func (s *Redis) Escalate(ctx context.Context, ws, configID string, a *engine.Assignment, next []engine.DecisionTarget, firstIndex int, queuedReason string, sticky time.Duration, local engine.LocalTimes, now time.Time) (bool, bool, error) {
	k := s.keys(ws)
	leadKey := k.lead(a.LeadID)
	keys := append(k.common(), leadKey, k.stickyOr(a.Person, leadKey), k.queue(a.PoolID))
	req := escalateArgs{base: base{Cfg: configID, Now: now.UnixMilli(), Zones: zonesArg(local)}, Lead: a.LeadID, Pool: a.PoolID, Score: scoreArg(&a.Lead),
		Person: a.Person, Sticky: sticky.Milliseconds(), First: firstIndex, Queued: queuedReason}
	keys, req.Targets = targetArgs(k, keys, next)
	r, err := s.call(ctx, ws, leadEscalate, keys, req)
	if err != nil {
		return false, false, err
	}
	switch p := decodeEscalate(r); p.code {
	case codeOK:
		return true, p.backlog, nil
	case codeStale:
		return false, false, engine.ErrStaleConfig
	case codeClaimed, codeWrongState, codeMoved:
		return false, false, nil
	}
	return false, false, r.unexpected(leadEscalate)
}

// RemoveLead implements engine.Store with lead_remove.lua.
func (s *Redis) RemoveLead(ctx context.Context, ws, leadID string, hold *engine.ArchiveHold, now time.Time) (bool, error) {
	k := s.keys(ws)
	keys := append(k.common(), k.lead(leadID), k.people(), k.recent())
	args := removeArgs{base: base{Now: now.UnixMilli()}, Lead: leadID}
	if hold != nil {
		keys = append(keys, k.sinkHeads(hold.SinkID), k.sinkState(hold.SinkID))
		args.Archive, args.RetainWindow = true, hold.Retain.Milliseconds()
	}
	r, err := s.call(ctx, ws, leadRemove, keys, args)
	if err != nil {
		return false, err
	}
	switch r.code {
	case codeOK:
		return true, nil
	case codeClaimed, codeNotFound, codeWrongState, codeHeld:
		return false, nil
	}
	return false, r.unexpected(leadRemove)
}

// Expire implements engine.Store with lead_expire.lua.
func (s *Redis) Expire(ctx context.Context, ws, leadID, reason string, retain time.Duration, now time.Time) (bool, error) {
	k := s.keys(ws)
	pool, err := s.client.HGet(ctx, k.lead(leadID), "pool").Result()
	for attempt := 0; attempt < 3; attempt++ {
		if err != nil && !errors.Is(err, redis.Nil) {
			return false, s.fail("expire", err)
		}
		keys := append(k.common(), k.lead(leadID), k.queue(pool))
		r, rerr := s.call(ctx, ws, leadExpire, keys, expireArgs{base: base{Now: now.UnixMilli(), Retain: retain.Milliseconds()},
			Lead: leadID, Pool: pool, Reason: reason})
		if rerr != nil {
			return false, rerr
		}
		switch x := decodeExpire(r); x.code {
		case codeOK:
			return true, nil
		case codeClaimed, codeWrongState:
			return false, nil
		case codeMoved:
			pool = x.pool // the lead escalated meanwhile
		default:
			return false, r.unexpected(leadExpire)
		}
	}
	return false, fmt.Errorf("lead %q: %w", leadID, engine.ErrConflict)
}

// run executes a script (EVALSHA, falling back to EVAL on NOSCRIPT) and
// returns its reply as strings. The facts a routing script appends to its
// reply go to the observer and are not part of what run returns.
func (s *Redis) run(ctx context.Context, ws string, sc *script, keys []string, args ...any) ([]string, error) {
	return s.runAcked(ctx, ws, sc, false, keys, args...)
}

// runAcked is run; with acked and SetAckReplicas, the script and a WAIT
// for the replicas go in one pipeline, on the connection of the master
// that holds keys (WAIT counts the writes of its own connection).
func (s *Redis) runAcked(ctx context.Context, ws string, sc *script, acked bool, keys []string, args ...any) ([]string, error) {
	var (
		v   any
		err error
	)
	if acked && s.ackReplicas > 0 {
		v, err = s.evalAcked(ctx, sc, keys, args)
	} else {
		v, err = sc.Run(ctx, s.client, keys, args...).Result()
	}
	if err != nil {
		return nil, s.fail(sc.name, sc.located(err))
	}
	list, ok := v.([]any)
	if !ok || len(list) == 0 {
		return nil, fmt.Errorf("store %s: unexpected script reply %v", sc.name, v)
	}
	out := make([]string, len(list))
	for i, e := range list {
		switch e := e.(type) {
		case string:
			out[i] = e
		case int64:
			out[i] = strconv.FormatInt(e, 10)
		default:
			return nil, fmt.Errorf("store %s: unexpected element %T in script reply", sc.name, e)
		}
	}
	if !sc.lib {
		return out, nil
	}
	reply, facts, err := splitFacts(out)
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", sc.name, err)
	}
	if len(facts) > 0 {
		s.obs.Recorded(ws, facts)
	}
	return reply, nil
}

// splitFacts parses the facts trailer of a routing script's reply:
// {reply..., kind, pool, ms, ... (n times), n}.
func splitFacts(list []string) ([]string, []engine.Fact, error) {
	n, err := strconv.Atoi(list[len(list)-1])
	start := len(list) - 1 - 3*n
	if err != nil || n < 0 || start < 1 {
		return nil, nil, fmt.Errorf("script reply without a facts trailer")
	}
	var facts []engine.Fact
	if n > 0 {
		facts = make([]engine.Fact, n)
		for i := range facts {
			f := list[start+3*i:]
			took, _ := strconv.ParseInt(f[2], 10, 64)
			facts[i] = engine.Fact{Kind: engine.EventKind(f[0]), PoolID: f[1], Took: time.Duration(took) * time.Millisecond}
		}
	}
	return list[:start], facts, nil
}

// fail classifies a Redis error: the caller's cancellation passes through;
// a reply error that says the server is busy, loading or failing over, and
// every transport error, is engine.ErrUnavailable (retry); any other reply
// error is a bug and is returned as it is.
func (s *Redis) fail(op string, err error) error {
	if err == nil || errors.Is(err, redis.Nil) {
		return nil
	}
	if errors.Is(err, context.Canceled) {
		return err // the caller left; Redis did nothing wrong
	}
	if errors.Is(err, os.ErrDeadlineExceeded) && !errors.Is(err, context.DeadlineExceeded) {
		// The connection's read deadline (the call's deadline, with
		// ContextTimeoutEnabled) passed: the same thing as the context's.
		err = fmt.Errorf("%w: %w", context.DeadlineExceeded, err)
	}
	s.obs.StoreFailed(op, err)
	if errors.Is(err, context.DeadlineExceeded) {
		// The call's time ran out waiting for Redis: the server answers
		// UNAVAILABLE (retry) rather than leave the client to time out.
		return fmt.Errorf("%w: %s: redis did not answer within the call's deadline", engine.ErrUnavailable, op)
	}
	var rerr redis.Error
	if errors.As(err, &rerr) {
		if c, ok := classify(rerr.Error()); ok {
			return fmt.Errorf("%w: %s: redis answered %s: %s (%v)", engine.ErrUnavailable, op, c.prefix, c.advice, err)
		}
		return fmt.Errorf("store %s: %w", op, err)
	}
	return fmt.Errorf("%w: %s: %v", engine.ErrUnavailable, op, err)
}

// replyClass is a Redis error reply that says the server cannot do the
// work now, though the request is fine: the call is UNAVAILABLE (safe to
// retry: a refused script wrote nothing), with what the operator can do.
type replyClass struct {
	prefix, advice string
}

// replyClasses are the replies that make a call UNAVAILABLE. Any other
// error reply is a bug (INTERNAL). Several come from the settings
// docs/deployment.md recommends (min-replicas-to-write, noeviction,
// stop-writes-on-bgsave-error).
var replyClasses = []replyClass{
	{"LOADING", "Redis is loading its dataset after a restart; retry in a moment"},
	{"READONLY", "the Redis answering is a replica (a failover, or the URL names a replica); retry, and point leadrouterd at the master or at Sentinel or the cluster"},
	{"MASTERDOWN", "the replica lost its master; retry once the failover is done"},
	{"CLUSTERDOWN", "the Redis Cluster cannot serve this workspace's slot; retry when the cluster recovers"},
	{"TRYAGAIN", "the workspace's cluster slot is being migrated; retry"},
	{"MOVED", "the workspace's cluster slot moved; retry"},
	{"ASK", "the workspace's cluster slot is being migrated; retry"},
	{"BUSY", "Redis is busy with a long-running script; retry"},
	{"NOREPLICAS", "Redis refused the write because fewer replicas than min-replicas-to-write are connected and in sync; bring a replica back or lower the setting"},
	{"MISCONF", "Redis refused writes because its last RDB snapshot failed (stop-writes-on-bgsave-error); fix the snapshot's disk or permissions, see the Redis log"},
	{"OOM", "Redis is at maxmemory and evicts nothing (noeviction, as leadrouter needs); free memory, raise maxmemory or shorten retention"},
}

// classify finds the class of an error reply by its first word.
func classify(msg string) (replyClass, bool) {
	word, _, _ := strings.Cut(msg, " ")
	for _, c := range replyClasses {
		if word == c.prefix {
			return c, true
		}
	}
	return replyClass{}, false
}
