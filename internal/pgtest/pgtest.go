// Package pgtest gives tests a PostgreSQL database of their own.
//
// With PG_URL set (a DSN of a role that may CREATE DATABASE), every DSN
// call creates a database there. Without it, the test binary starts one
// private server of its own: initdb in a temporary directory, pg_ctl start
// on a free loopback port, fsync off. The machine's own PostgreSQL (port
// 5432) is never used. A test binary using pgtest calls Main from its
// TestMain, which stops the private server and removes its directory after
// the tests:
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
//
// A package that needs another harness's TestMain as well nests it with
// Run: os.Exit(pgtest.Run(func() int { return redistest.Main(m) })).
//
// The binaries come from PATH (initdb and pg_ctl side by side) or else from
// the newest /usr/lib/postgresql/<version>/bin; Debian's postgresql package
// installs them. Run as root, the server runs as the postgres user, since
// PostgreSQL refuses to run as root.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvURL names the variable of an existing server's DSN.
const EnvURL = "PG_URL"

// dirPrefix starts the name of a private server's temporary directory,
// followed by the test binary's pid.
const dirPrefix = "leadrouter-pgtest-"

var (
	mainCalled atomic.Bool
	dbSeq      atomic.Int64

	startOnce sync.Once
	private   *server // the private server, once started
	startErr  error
)

// Main runs a package's tests, then stops the private server (if one
// started) and removes its directory, and returns the tests' exit code.
func Main(m *testing.M) int { return Run(m.Run) }

// Run is Main for a run function of its own: a package's tests run by
// another harness's Main.
func Run(run func() int) int {
	mainCalled.Store(true)
	code := run()
	if private != nil {
		private.shutdown()
	}
	return code
}

// DSN returns the DSN of a new, empty database for this test, dropped when
// the test ends.
func DSN(tb testing.TB) string {
	tb.Helper()
	admin := os.Getenv(EnvURL)
	if admin == "" {
		s := ensureServer(tb)
		admin = s.dsn("postgres")
	}
	name := fmt.Sprintf("pgtest_%d_%d", os.Getpid(), dbSeq.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := adminExec(ctx, admin, "CREATE DATABASE "+name+" TEMPLATE template0"); err != nil {
		tb.Fatalf("pgtest: create database: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err := adminExec(ctx, admin, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		switch {
		case err == nil:
		case os.Getenv(EnvURL) != "":
			tb.Errorf("pgtest: drop database %s: %v", name, err)
		default: // the private server goes at exit with its databases
			tb.Logf("pgtest: drop database %s: %v", name, err)
		}
	})
	dsn, err := withDatabase(admin, name)
	if err != nil {
		tb.Fatalf("pgtest: %s: %v", EnvURL, err)
	}
	return dsn
}

// Restart restarts the private server (pg_ctl restart -m fast): open
// connections are cut, and the server answers again when it returns.
// Every test of the binary shares the server, so a test that restarts it
// must not run in parallel with others. With PG_URL set it fails the test:
// restarting needs the private server.
func Restart(tb testing.TB) {
	tb.Helper()
	s := controlled(tb, "Restart")
	if err := s.ctl("restart"); err != nil {
		tb.Fatalf("pgtest: restart: %v", err)
	}
}

// Stop stops the private server (pg_ctl stop -m fast) until Start; as for
// Restart, not with PG_URL and not in parallel with other tests.
func Stop(tb testing.TB) {
	tb.Helper()
	s := controlled(tb, "Stop")
	if err := s.ctl("stop"); err != nil {
		tb.Fatalf("pgtest: stop: %v", err)
	}
}

// Start starts the private server again after Stop, on the same port and
// with the same data, and waits until it answers.
func Start(tb testing.TB) {
	tb.Helper()
	s := controlled(tb, "Start")
	if err := s.ctl("start"); err != nil {
		tb.Fatalf("pgtest: start: %v", err)
	}
}

func controlled(tb testing.TB, what string) *server {
	tb.Helper()
	if os.Getenv(EnvURL) != "" {
		tb.Fatalf("pgtest.%s needs the private server: unset %s", what, EnvURL)
	}
	return ensureServer(tb)
}

func ensureServer(tb testing.TB) *server {
	tb.Helper()
	if !mainCalled.Load() {
		tb.Fatal("pgtest: call pgtest.Main(m) (or pgtest.Run) from the package's TestMain, which stops the private server after the tests")
	}
	startOnce.Do(func() { private, startErr = startServer() })
	if startErr != nil {
		tb.Fatalf("pgtest: %v", startErr)
	}
	return private
}

// adminExec runs one statement on a connection of its own.
func adminExec(ctx context.Context, dsn, sql string) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	return err
}

// withDatabase is dsn (URL or key=value form) naming database name.
func withDatabase(dsn, name string) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", err
		}
		u.Path = "/" + name
		return u.String(), nil
	}
	return dsn + " dbname=" + name, nil // a later keyword wins
}

// server is the private PostgreSQL server.
type server struct {
	mu   sync.Mutex // serializes pg_ctl
	bin  string     // the directory of initdb, pg_ctl and postgres
	root string     // the temporary directory: data/, sock/, log
	port int
	cred *syscall.Credential // the postgres user's, when run as root; else nil
}

func (s *server) data() string { return filepath.Join(s.root, "data") }
func (s *server) sock() string { return filepath.Join(s.root, "sock") }
func (s *server) log() string  { return filepath.Join(s.root, "log") }

func (s *server) dsn(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.port, db)
}

func startServer() (*server, error) {
	removeStale()
	bin, err := findBinaries()
	if err != nil {
		return nil, err
	}
	s := &server{bin: bin}
	if os.Geteuid() == 0 {
		if s.cred, err = postgresUser(); err != nil {
			return nil, err
		}
	}
	s.root, err = os.MkdirTemp("", dirPrefix+strconv.Itoa(os.Getpid())+"-")
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			s.shutdown()
		}
	}()
	for _, d := range []string{s.data(), s.sock()} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return nil, err
		}
	}
	if s.cred != nil {
		for _, d := range []string{s.root, s.data(), s.sock()} {
			if err := os.Chown(d, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
				return nil, err
			}
		}
	}
	if out, err := s.run("initdb", "-D", s.data(), "-U", "postgres", "--auth=trust",
		"--encoding=UTF8", "--locale=C", "--no-sync"); err != nil {
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	// A port found free may be taken before the server binds it: try a
	// few.
	for attempt := 0; ; attempt++ {
		if s.port, err = freePort(); err != nil {
			return nil, err
		}
		if err = s.ctl("start"); err == nil || attempt == 4 {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	ok = true
	return s, nil
}

// ctl runs pg_ctl start, stop or restart and, unless stopping, waits
// until the server takes connections.
func (s *server) ctl(action string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	args := []string{action, "-D", s.data(), "-w", "-t", "60"}
	switch action {
	case "start", "restart":
		args = append(args, "-l", s.log(), "-o", fmt.Sprintf(
			"-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off "+
				"-c full_page_writes=off -c max_connections=300", s.port, s.sock()))
	}
	if action != "start" {
		args = append(args, "-m", "fast")
	}
	if out, err := s.run("pg_ctl", args...); err != nil {
		return fmt.Errorf("pg_ctl %s: %v\n%s\n%s", action, err, out, s.logTail())
	}
	if action == "stop" {
		return nil
	}
	return s.waitReady(30 * time.Second)
}

func (s *server) waitReady(within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := adminExec(ctx, s.dsn("postgres"), "SELECT 1")
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("postgres on port %d not answering after %v: %w\n%s", s.port, within, err, s.logTail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// shutdown stops the server at once (its data is thrown away) and removes
// its directory.
func (s *server) shutdown() {
	if _, err := os.Stat(filepath.Join(s.data(), "postmaster.pid")); err == nil {
		_, _ = s.run("pg_ctl", "stop", "-D", s.data(), "-w", "-t", "30", "-m", "immediate")
	}
	_ = os.RemoveAll(s.root)
}

// run runs one of the PostgreSQL binaries, as the postgres user when
// s.cred says so, in s.root (a directory that user may enter).
func (s *server) run(name string, args ...string) ([]byte, error) {
	cmd := exec.Command(filepath.Join(s.bin, name), args...)
	cmd.Dir = s.root
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	if s.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	}
	return cmd.CombinedOutput()
}

func (s *server) logTail() string {
	b, err := os.ReadFile(s.log())
	if err != nil {
		return ""
	}
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return "server log:\n" + string(b)
}

// findBinaries is the directory holding initdb, pg_ctl and postgres:
// pg_ctl's on PATH (following links), else the newest
// /usr/lib/postgresql/<version>/bin.
func findBinaries() (string, error) {
	has := func(dir string) bool {
		for _, n := range []string{"initdb", "pg_ctl", "postgres"} {
			if fi, err := os.Stat(filepath.Join(dir, n)); err != nil || fi.IsDir() {
				return false
			}
		}
		return true
	}
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil && has(filepath.Dir(real)) {
			return filepath.Dir(real), nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	version := func(d string) float64 {
		v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(d)), 64)
		return v
	}
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if has(d) {
			return d, nil
		}
	}
	return "", errors.New("no PostgreSQL server binaries (initdb, pg_ctl, postgres) on PATH or under " +
		"/usr/lib/postgresql/*/bin: install Debian's postgresql package (apt-get install postgresql), " +
		"or set " + EnvURL + " to a server where this role may CREATE DATABASE")
}

// postgresUser is the credential of the postgres user, which runs the
// server when the tests run as root.
func postgresUser() (*syscall.Credential, error) {
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root, PostgreSQL must run as another user and there is no postgres user (%v): "+
			"install Debian's postgresql package, or run the tests as another user", err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("postgres user: uid %q, gid %q", u.Uid, u.Gid)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// removeStale stops the servers of test binaries that died without
// cleaning up (a panic, a timeout) and removes their directories.
func removeStale() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), dirPrefix+"*"))
	for _, d := range dirs {
		pidText, _, _ := strings.Cut(strings.TrimPrefix(filepath.Base(d), dirPrefix), "-")
		pid, err := strconv.Atoi(pidText)
		if err != nil || pid == os.Getpid() || syscall.Kill(pid, 0) != syscall.ESRCH {
			continue // not ours, or its binary still runs
		}
		stale := &server{root: d}
		if bin, err := findBinaries(); err == nil {
			stale.bin = bin
		}
		if fi, err := os.Stat(d); err == nil {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok && os.Geteuid() == 0 && st.Uid != 0 {
				stale.cred = &syscall.Credential{Uid: st.Uid, Gid: st.Gid}
			}
		}
		stale.shutdown()
	}
}

// freePort is a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
