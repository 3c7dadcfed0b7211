// Package redisproc holds what every redis-server this repository starts
// for itself has in common: a free loopback port, the arguments of a
// server that keeps nothing on disk unless told to, and waiting until it
// answers. Its users manage the processes their own way: the test helpers
// (internal/redistest) with testing.TB, leadbench with its own children.
package redisproc

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// URL is the redis:// URL of database 0 on a loopback port.
func URL(port int) string { return fmt.Sprintf("redis://127.0.0.1:%d/0", port) }

// Args are redis-server's arguments for a server in the foreground on a
// loopback port, with its files in dir and no persistence, followed by
// extra (which may turn persistence on: later arguments win).
func Args(port int, dir string, extra ...string) []string {
	return append([]string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
		"--save", "", "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning"}, extra...)
}

// WaitReady pings the server at url every 20 ms until it answers, stop
// reports an error (the process exited, say) or within passes.
func WaitReady(url string, within time.Duration, stop func() error) error {
	opts, err := redis.ParseURL(url)
	if err != nil {
		return err
	}
	c := redis.NewClient(opts)
	defer c.Close()
	deadline := time.Now().Add(within)
	for {
		if stop != nil {
			if err := stop(); err != nil {
				return err
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not answering after %v: %w", within, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
