package store_test

import (
	"net"
	"strings"
	"testing"

	"github.com/leadrouter/leadrouter/store"
)

func TestParseURL(t *testing.T) {
	for _, c := range []struct {
		name, url string
		kind      string // single, cluster, sentinel
		addrs     []string
		user      string
		pass      string
		master    string
		db        int
		tls       bool
	}{
		{name: "one server", url: "redis://localhost:6379/2", kind: "single", addrs: []string{"localhost:6379"}, db: 2},
		{name: "one server with TLS and ACL user", url: "rediss://router:s3cret@redis.internal:6380/0", kind: "single",
			addrs: []string{"redis.internal:6380"}, user: "router", pass: "s3cret", tls: true},
		{name: "unix socket", url: "unix:///run/redis.sock?db=3", kind: "single", addrs: []string{"/run/redis.sock"}, db: 3},
		{name: "cluster", url: "redis+cluster://127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003", kind: "cluster",
			addrs: []string{"127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"}},
		{name: "cluster with credentials and options", url: "redis+cluster://router:p%40ss@h1:7001,h2:7002?dial_timeout=3s&pool_size=20",
			kind: "cluster", addrs: []string{"h1:7001", "h2:7002"}, user: "router", pass: "p@ss"},
		{name: "cluster with TLS", url: "rediss+cluster://h1:7001,h2:7002/", kind: "cluster", addrs: []string{"h1:7001", "h2:7002"}, tls: true},
		{name: "cluster host without port", url: "redis+cluster://h1,h2:7002", kind: "cluster", addrs: []string{"h1:6379", "h2:7002"}},
		{name: "cluster on IPv6", url: "redis+cluster://[::1]:7001,[::1]:7002", kind: "cluster", addrs: []string{"[::1]:7001", "[::1]:7002"}},
		{name: "cluster scheme in capitals", url: "Redis+Cluster://h1:7001", kind: "cluster", addrs: []string{"h1:7001"}},
		{name: "sentinel", url: "redis+sentinel://s1:26379,s2:26379/mymaster", kind: "sentinel",
			addrs: []string{"s1:26379", "s2:26379"}, master: "mymaster"},
		{name: "sentinel with db and master password", url: "redis+sentinel://:pw@s1,s2:26380/mymaster/4", kind: "sentinel",
			addrs: []string{"s1:26379", "s2:26380"}, master: "mymaster", db: 4, pass: "pw"},
		{name: "sentinel with TLS", url: "rediss+sentinel://s1:26379/m", kind: "sentinel", addrs: []string{"s1:26379"}, master: "m", tls: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			o, err := store.ParseURL(c.url)
			if err != nil {
				t.Fatal(err)
			}
			var kind, user, pass, master string
			var addrs []string
			var db int
			switch {
			case o.Single != nil:
				kind, addrs, user, pass, db = "single", []string{o.Single.Addr}, o.Single.Username, o.Single.Password, o.Single.DB
			case o.Cluster != nil:
				kind, addrs, user, pass = "cluster", o.Cluster.Addrs, o.Cluster.Username, o.Cluster.Password
			case o.Failover != nil:
				f := o.Failover
				kind, addrs, user, pass, master, db = "sentinel", f.SentinelAddrs, f.Username, f.Password, f.MasterName, f.DB
				if f.SentinelPassword != "" {
					t.Errorf("sentinel password %q: the URL's password is the master's", f.SentinelPassword)
				}
			}
			if kind != c.kind || strings.Join(addrs, " ") != strings.Join(c.addrs, " ") || user != c.user || pass != c.pass ||
				master != c.master || db != c.db || (o.TLS() != nil) != c.tls {
				t.Errorf("got %s %v user %q pass %q master %q db %d tls %v", kind, addrs, user, pass, master, db, o.TLS() != nil)
			}
		})
	}
}

func TestParseURLSentinelCredentials(t *testing.T) {
	o, err := store.ParseURL("redis+sentinel://app:apppw@s1:26379/m?sentinel_username=sent&sentinel_password=sentpw&dial_timeout=2s")
	if err != nil {
		t.Fatal(err)
	}
	f := o.Failover
	if f.Username != "app" || f.Password != "apppw" || f.SentinelUsername != "sent" || f.SentinelPassword != "sentpw" || f.DialTimeout.Seconds() != 2 {
		t.Errorf("%+v", f)
	}
}

func TestParseURLErrors(t *testing.T) {
	for _, c := range []struct{ name, url, want string }{
		{"no scheme", "localhost:6379", "want scheme://"},
		{"unknown scheme", "memcache://h:1", `unknown scheme "memcache"`},
		{"cluster without hosts", "redis+cluster://", "at least one host"},
		{"cluster without hosts but credentials", "redis+cluster://u:s3cret@/", "at least one host"},
		{"empty host in the list", "redis+cluster://h1:7001,,h2:7002", "empty host"},
		{"port out of range", "redis+cluster://h1:70010", "port must be a number"},
		{"port not a number", "redis+cluster://h1:x", "port must be a number"},
		{"bare IPv6", "redis+cluster://::1:7001", "IPv6"},
		{"cluster with a database", "redis+cluster://h1:7001/3", "only database 0"},
		{"cluster with addr parameters", "redis+cluster://h1:7001?addr=h2:7002", "not as addr="},
		{"cluster with unknown option", "redis+cluster://h1:7001?colour=blue", "colour"},
		{"cluster with a fragment", "redis+cluster://h1:7001#x", "fragment"},
		{"sentinel without master", "redis+sentinel://s1:26379", "master's name"},
		{"sentinel with a bad db", "redis+sentinel://s1:26379/m/x", `database "x"`},
		{"sentinel with too long a path", "redis+sentinel://s1:26379/m/1/2", "master's name"},
		{"single with a bad db", "redis://h:6379/x", "database"},
		{"bad password escape", "redis+cluster://u:s3cret%zz@h1:7001", "escape"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := store.ParseURL(c.url)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("%s: %v, want an error with %q", c.url, err, c.want)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("the error repeats the password: %v", err)
			}
		})
	}
}

func TestNewClientCAOnlyWithTLS(t *testing.T) {
	for _, u := range []string{"redis://h:6379/0", "redis+cluster://h:7001", "redis+sentinel://s:26379/m"} {
		if _, err := store.NewClient(u, store.OpenOptions{CAFile: "ca.pem"}); err == nil || !strings.Contains(err.Error(), "TLS URL") {
			t.Errorf("%s with a CA: %v", u, err)
		}
	}
	for _, u := range []string{"rediss://h:6379/0", "rediss+cluster://h:7001", "rediss+sentinel://s:26379/m"} {
		if _, err := store.NewClient(u, store.OpenOptions{CAFile: "testdata/missing-ca.pem"}); err == nil || !strings.Contains(err.Error(), "redis CA") {
			t.Errorf("%s with a missing CA file: %v", u, err)
		}
	}
}

// FuzzParseURL: the parser never panics; what it accepts names one kind of
// client with well-formed addresses (and NewClient builds it); what it
// rejects it says without the password.
func FuzzParseURL(f *testing.F) {
	for _, u := range []string{
		"redis://localhost:6379/0", "rediss://u:s3cret@h:6380/1", "unix:///tmp/r.sock?db=2",
		"redis+cluster://127.0.0.1:7001,127.0.0.1:7002", "rediss+cluster://u:s3cret@[::1]:7001,h2?dial_timeout=1s",
		"redis+sentinel://s1:26379,s2:26379/mymaster", "redis+sentinel://:s3cret@s1/m/3?sentinel_password=x",
		"redis+cluster://h1:7001,,h2", "redis+sentinel://s1", "redis+cluster://u:s3cret@h:99999",
	} {
		f.Add(u)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		o, err := store.ParseURL(raw)
		if err != nil {
			if pass := password(raw); len(pass) >= 4 && strings.Contains(err.Error(), pass) &&
				!strings.Contains(strings.Replace(raw, pass, "", 1), pass) {
				t.Fatalf("error repeats the password %q: %v", pass, err)
			}
			return
		}
		n := 0
		switch {
		case o.Single != nil:
			n++
		case o.Cluster != nil:
			n++
			checkAddrs(t, o.Cluster.Addrs)
		case o.Failover != nil:
			n++
			checkAddrs(t, o.Failover.SentinelAddrs)
			if o.Failover.MasterName == "" {
				t.Fatal("sentinel without a master name")
			}
		}
		if n != 1 {
			t.Fatalf("%q: %d kinds of client", raw, n)
		}
		c, err := store.NewClient(raw, store.OpenOptions{})
		if err != nil {
			t.Fatalf("ParseURL accepted %q, NewClient did not: %v", raw, err)
		}
		c.Close()
	})
}

func checkAddrs(t *testing.T, addrs []string) {
	t.Helper()
	if len(addrs) == 0 {
		t.Fatal("no addresses")
	}
	for _, a := range addrs {
		if _, _, err := net.SplitHostPort(a); err != nil {
			t.Fatalf("address %q: %v", a, err)
		}
	}
}

// password is the password of scheme://user:password@host..., or "".
func password(raw string) string {
	_, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return ""
	}
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		rest = rest[:i]
	}
	at := strings.LastIndexByte(rest, '@')
	if at < 0 {
		return ""
	}
	_, pass, _ := strings.Cut(rest[:at], ":")
	return pass
}
