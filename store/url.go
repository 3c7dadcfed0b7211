package store

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// The URL forms NewClient accepts. Query parameters are go-redis's
// (dial_timeout, pool_size, ...) and unknown ones are an error.
//
//	redis://[user:pass@]host:port[/db]       one server (rediss:// for TLS)
//	unix://[user:pass@]/path/to/socket[?db=N] one server on a Unix socket
//	redis+cluster://[user:pass@]host1:7001,host2:7002[,...]
//	                                          Redis Cluster: seed nodes; the
//	                                          rest are discovered (rediss+cluster:// for TLS)
//	redis+sentinel://[user:pass@]host1:26379,host2:26379/mastername[/db]
//	                                          Sentinel (rediss+sentinel:// for TLS)
//
// With Sentinel, user and password are the master's (what AUTH on the
// data nodes needs); sentinels that require a password of their own take
// it from the query parameters sentinel_username and sentinel_password.
const (
	clusterScheme  = "redis+cluster"
	sentinelScheme = "redis+sentinel"
)

// ClientOptions are what a Redis URL says. Exactly one of Single, Cluster
// and Failover is set.
type ClientOptions struct {
	Single   *redis.Options         // redis://, rediss://, unix://
	Cluster  *redis.ClusterOptions  // redis+cluster://, rediss+cluster://
	Failover *redis.FailoverOptions // redis+sentinel://, rediss+sentinel://
}

// ParseURL reads a Redis URL of any form NewClient accepts. Its errors
// never repeat the URL, which may hold a password.
func ParseURL(raw string) (*ClientOptions, error) {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return nil, errors.New("redis url: want scheme://..., e.g. redis://host:6379/0 or redis+cluster://host1:7001,host2:7002")
	}
	switch strings.ToLower(scheme) {
	case "redis", "rediss", "unix":
		o, err := redis.ParseURL(raw)
		if err != nil {
			return nil, fmt.Errorf("redis url: %w", redact(err))
		}
		return &ClientOptions{Single: o}, nil
	case clusterScheme, "rediss+cluster":
		u, err := multiHost(strings.ToLower(scheme), rest, 6379)
		if err != nil {
			return nil, err
		}
		if p := strings.Trim(u.Path, "/"); p != "" && p != "0" {
			return nil, fmt.Errorf("redis url: a cluster has only database 0, the URL names %q", p)
		}
		u.Path = ""
		o, err := redis.ParseClusterURL(u.String())
		if err != nil {
			return nil, fmt.Errorf("redis url: %w", redact(err))
		}
		return &ClientOptions{Cluster: o}, nil
	case sentinelScheme, "rediss+sentinel":
		u, err := multiHost(strings.ToLower(scheme), rest, 26379)
		if err != nil {
			return nil, err
		}
		parts := strings.Split(strings.Trim(u.Path, "/"), "/")
		if parts[0] == "" || len(parts) > 2 {
			return nil, errors.New("redis url: a sentinel URL needs the master's name as its path: redis+sentinel://host1:26379,host2:26379/mastername[/db]")
		}
		master, db := parts[0], "0"
		if len(parts) == 2 {
			db = parts[1]
		}
		if n, err := strconv.Atoi(db); err != nil || n < 0 {
			return nil, fmt.Errorf("redis url: database %q is not a number", db)
		}
		// The userinfo is the master's; go-redis reads the URL's userinfo
		// as the sentinels' and their own credentials from the query.
		q := u.Query()
		sentUser, sentPass := q.Get("sentinel_username"), q.Get("sentinel_password")
		q.Del("sentinel_username")
		q.Del("sentinel_password")
		user := u.User.Username()
		pass, _ := u.User.Password()
		u.User = nil
		q.Set("master_name", master)
		u.RawQuery = q.Encode()
		u.Path = "/" + db
		o, err := redis.ParseFailoverURL(u.String())
		if err != nil {
			return nil, fmt.Errorf("redis url: %w", redact(err))
		}
		o.Username, o.Password = user, pass
		o.SentinelUsername, o.SentinelPassword = sentUser, sentPass
		return &ClientOptions{Failover: o}, nil
	}
	return nil, fmt.Errorf("redis url: unknown scheme %q: want redis, rediss, unix, redis+cluster, rediss+cluster, redis+sentinel or rediss+sentinel", scheme)
}

// multiHost turns "[user:pass@]h1:p1,h2:p2[/path][?query]" into a URL that
// go-redis's cluster and failover parsers read: the first host as the URL's
// host and the others as addr query parameters. A host without a port gets
// defaultPort.
func multiHost(scheme, rest string, defaultPort int) (*url.URL, error) {
	authority, tail := rest, ""
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		authority, tail = rest[:i], rest[i:]
	}
	userinfo, hostlist := "", authority
	if i := strings.LastIndexByte(authority, '@'); i >= 0 {
		userinfo, hostlist = authority[:i+1], authority[i+1:]
	}
	if hostlist == "" {
		return nil, fmt.Errorf("redis url: %s:// needs at least one host:port", scheme)
	}
	var addrs []string
	for _, h := range strings.Split(hostlist, ",") {
		addr, err := hostPort(h, defaultPort)
		if err != nil {
			return nil, err
		}
		addrs = append(addrs, addr)
	}
	base := "redis"
	if strings.HasPrefix(scheme, "rediss") {
		base = "rediss"
	}
	u, err := url.Parse(base + "://" + userinfo + addrs[0] + tail)
	if err != nil {
		return nil, fmt.Errorf("redis url: %w", redact(err))
	}
	if u.Fragment != "" {
		return nil, errors.New("redis url: a fragment (#...) is not allowed")
	}
	q := u.Query()
	if q.Has("addr") {
		return nil, errors.New("redis url: list every host before the path (host1:7001,host2:7002), not as addr= parameters")
	}
	for _, a := range addrs[1:] {
		q.Add("addr", a)
	}
	u.RawQuery = q.Encode()
	return u, nil
}

// hostPort checks one "host:port" (or "[v6]:port", or a host alone).
func hostPort(h string, defaultPort int) (string, error) {
	if h == "" {
		return "", errors.New("redis url: empty host in the host list (two commas in a row?)")
	}
	host, port, err := net.SplitHostPort(h)
	if err != nil {
		if strings.Contains(strings.Trim(h, "[]"), ":") && !strings.HasPrefix(h, "[") {
			return "", fmt.Errorf("redis url: host %q: write IPv6 addresses as [addr]:port", h)
		}
		host, port = strings.Trim(h, "[]"), strconv.Itoa(defaultPort)
	}
	if host == "" {
		return "", fmt.Errorf("redis url: host %q has no name", h)
	}
	if strings.ContainsAny(host, " \t\r\n@/?#%\\[]") {
		return "", fmt.Errorf("redis url: host %q is not a host name or address", h)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("redis url: host %q: port must be a number from 1 to 65535", h)
	}
	return net.JoinHostPort(host, port), nil
}

// redact drops the URL (and so any password) from a URL parser's error.
func redact(err error) error {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		return uerr.Err
	}
	return err
}

// TLS returns the TLS settings of the URL's client (nil without TLS).
func (o *ClientOptions) TLS() *tls.Config {
	switch {
	case o.Cluster != nil:
		return o.Cluster.TLSConfig
	case o.Failover != nil:
		return o.Failover.TLSConfig
	}
	return o.Single.TLSConfig
}

// NewClient returns a client for a Redis URL of any form ParseURL reads: a
// *redis.Client for one server or through Sentinel, a *redis.ClusterClient
// for a cluster. Every kind gets the same treatment: o.CAFile's CAs verify
// the server (TLS URLs only), a call's context deadline bounds its Redis
// round trips, and o.PoolSize (when set) sizes the pool of each node. It
// does not connect; Open does and checks that Redis answers.
func NewClient(rawURL string, o OpenOptions) (redis.UniversalClient, error) {
	opts, err := ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	if o.CAFile != "" {
		cfg := opts.TLS()
		if cfg == nil {
			return nil, errors.New("a Redis CA needs a TLS URL (rediss://, rediss+cluster:// or rediss+sentinel://)")
		}
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("redis CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("redis CA %s: no PEM certificates", o.CAFile)
		}
		cfg.RootCAs = pool
	}
	switch {
	case opts.Cluster != nil:
		c := opts.Cluster
		c.ContextTimeoutEnabled = true
		if o.PoolSize > 0 {
			c.PoolSize = o.PoolSize
		}
		cc := redis.NewClusterClient(c)
		cc.AddHook(slotReloader{cc})
		return cc, nil
	case opts.Failover != nil:
		f := opts.Failover
		f.ContextTimeoutEnabled = true
		if o.PoolSize > 0 {
			f.PoolSize = o.PoolSize
		}
		return redis.NewFailoverClient(f), nil
	}
	s := opts.Single
	s.ContextTimeoutEnabled = true
	if o.PoolSize > 0 {
		s.PoolSize = o.PoolSize
	}
	return redis.NewClient(s), nil
}

// slotReloader asks a cluster client to read the slot map again after a
// failure that may mean the map is stale: a node that does not answer (a
// dead master whose replica is being promoted) or a cluster that says it
// is failing over. go-redis reloads by itself on MOVED and READONLY, and
// otherwise only every few seconds; ReloadState runs in the background,
// at most every 200 ms however often it is asked for.
type slotReloader struct{ c *redis.ClusterClient }

func (h slotReloader) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h slotReloader) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		h.after(ctx, err)
		return err
	}
}

func (h slotReloader) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		h.after(ctx, err)
		return err
	}
}

func (h slotReloader) after(ctx context.Context, err error) {
	if err == nil || errors.Is(err, redis.Nil) || errors.Is(err, context.Canceled) {
		return
	}
	var rerr redis.Error
	if errors.As(err, &rerr) && !strings.HasPrefix(err.Error(), "CLUSTERDOWN") && !strings.HasPrefix(err.Error(), "TRYAGAIN") {
		return // an answer from a node that is up: the map is fine
	}
	h.c.ReloadState(ctx)
}
