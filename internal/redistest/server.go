package redistest

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// Server is a redis-server of one test's own, for tests that stop, kill,
// pause or restart it. It keeps its port and data directory across
// restarts, so a restart with persistence finds its files again.
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
	port, err := FreePort()
	if err != nil {
		tb.Fatal(err)
	}
	s := &Server{Port: port, Dir: tb.TempDir(), URL: fmt.Sprintf("redis://127.0.0.1:%d/0", port)}
	s.args = append([]string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", s.Dir,
		"--save", "", "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning"}, extra...)
	tb.Cleanup(func() { s.Kill(tb) })
	s.Start(tb)
	return s
}

// Start starts the server (again), on its port and directory, and waits
// until it answers.
func (s *Server) Start(tb testing.TB) {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		tb.Fatalf("redis-server is not on PATH (apt-get install redis-server): %v", err)
	}
	s.cmd = exec.Command(bin, s.args...)
	s.cmd.Stdout, s.cmd.Stderr = os.Stderr, os.Stderr
	if err := s.cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	if err := waitReady(s.URL, 10*time.Second); err != nil {
		tb.Fatalf("redis-server on port %d: %v", s.Port, err)
	}
}

// Kill stops the server at once (SIGKILL), as a crash would.
func (s *Server) Kill(tb testing.TB) {
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
