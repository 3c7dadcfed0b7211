package redistest

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/leadrouter/leadrouter/internal/redisproc"
)

// Server is a redis-server of its own, for tests that stop, kill, pause or
// restart it, and the one launcher of every redis-server this package
// starts (the shared one, cluster nodes, sentinels). It keeps its port and
// data directory across restarts, so a restart with persistence finds its
// files again.
type Server struct {
	URL  string
	Port int
	Dir  string
	args []string
	cmd  *exec.Cmd
}

// StartServer starts a redis-server on a free loopback port with the extra
// arguments given (e.g. "--appendonly", "yes"); it is killed when the test
// ends. Without persistence arguments it keeps nothing on disk.
func StartServer(tb testing.TB, extra ...string) *Server {
	tb.Helper()
	s, err := newServer(tb.TempDir(), extra...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.stop)
	s.Start(tb)
	return s
}

// newServer prepares (does not start) a redis-server on a free loopback
// port that keeps nothing on disk unless extra says otherwise.
func newServer(dir string, extra ...string) (*Server, error) {
	port, err := redisproc.FreePort()
	if err != nil {
		return nil, err
	}
	return &Server{Port: port, Dir: dir, URL: redisproc.URL(port), args: redisproc.Args(port, dir, extra...)}, nil
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.Port) }

// Start starts the server (again), on its port and directory, and waits
// until it answers.
func (s *Server) Start(tb testing.TB) {
	tb.Helper()
	if err := s.start(); err != nil {
		tb.Fatal(err)
	}
}

func (s *Server) start() error {
	return s.startBinary("redis-server")
}

// startBinary runs name (redis-server, or redis-sentinel) with the
// server's arguments and waits until it answers PING.
func (s *Server) startBinary(name string, args ...string) error {
	bin, err := exec.LookPath(name)
	if err != nil {
		return fmt.Errorf("%s is not on PATH (apt-get install redis-server, or set REDIS_URL): %w", name, err)
	}
	s.cmd = exec.Command(bin, append(args, s.args...)...)
	s.cmd.Stdout, s.cmd.Stderr = os.Stderr, os.Stderr
	if err := s.cmd.Start(); err != nil {
		return err
	}
	if err := redisproc.WaitReady(s.URL, 10*time.Second, nil); err != nil {
		s.stop()
		return fmt.Errorf("%s on port %d: %w", name, s.Port, err)
	}
	return nil
}

// Kill stops the server at once (SIGKILL), as a crash would.
func (s *Server) Kill(tb testing.TB) { s.stop() }

// Running reports whether the server process is running (not killed).
func (s *Server) Running() bool { return s.cmd != nil }

func (s *Server) stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGCONT) // a paused server must die too
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

// Pause freezes the server (SIGSTOP): connections stay open, nothing is
// answered, as with a hung host.
func (s *Server) Pause(tb testing.TB) { s.signal(tb, syscall.SIGSTOP) }

// Resume undoes Pause.
func (s *Server) Resume(tb testing.TB) { s.signal(tb, syscall.SIGCONT) }

func (s *Server) signal(tb testing.TB, sig syscall.Signal) {
	tb.Helper()
	if s.cmd == nil || s.cmd.Process == nil {
		tb.Fatal("redis-server is not running")
	}
	if err := s.cmd.Process.Signal(sig); err != nil {
		tb.Fatal(err)
	}
}
