package store

import (
	"fmt"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// Embedded is the zero-setup default: an in-process Redis (miniredis) on a
// loopback port, with the store on it. Its data lives in memory and is lost
// when the process exits. Close stops both.
type Embedded struct {
	*Redis
	server *miniredis.Miniredis
}

// StartEmbedded starts the in-process Redis and returns the store on it.
func StartEmbedded() (*Embedded, error) {
	srv := miniredis.NewMiniRedis()
	if err := srv.Start(); err != nil {
		return nil, fmt.Errorf("embedded redis: %w", err)
	}
	client := redis.NewClient(&redis.Options{Addr: srv.Addr(), ContextTimeoutEnabled: true})
	return &Embedded{Redis: New(client, ""), server: srv}, nil
}

// Addr is the embedded server's address (redis-cli can inspect it).
func (e *Embedded) Addr() string { return e.server.Addr() }

// Close closes the client and stops the server.
func (e *Embedded) Close() error {
	err := e.Redis.Close()
	e.server.Close()
	return err
}
