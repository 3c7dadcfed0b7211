package pgtest_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/leadrouter/leadrouter/internal/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func pgtestConnect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// Each DSN is a database of its own, empty, never the machine's server.
func TestDSNGivesEmptyDatabases(t *testing.T) {
	ctx := context.Background()
	a, b := pgtest.DSN(t), pgtest.DSN(t)
	if a == b {
		t.Fatalf("two calls gave the same DSN %s", a)
	}
	ca, cb := pgtestConnect(t, a), pgtestConnect(t, b)
	if _, err := ca.Exec(ctx, "CREATE TABLE only_in_a (x int)"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := cb.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("second database has %d tables, want 0", n)
	}
	if os.Getenv(pgtest.EnvURL) == "" && ca.PgConn().Conn().RemoteAddr().String() == "127.0.0.1:5432" {
		t.Error("connected to the machine's PostgreSQL on 5432, not the private server")
	}
}

// A test's database is dropped when it ends.
func TestDSNDroppedAtCleanup(t *testing.T) {
	var name string
	t.Run("inner", func(t *testing.T) {
		c := pgtestConnect(t, pgtest.DSN(t))
		if err := c.QueryRow(context.Background(), "SELECT current_database()").Scan(&name); err != nil {
			t.Fatal(err)
		}
	})
	c := pgtestConnect(t, pgtest.DSN(t))
	var n int
	if err := c.QueryRow(context.Background(), "SELECT count(*) FROM pg_database WHERE datname = $1", name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("database %s still exists after its test ended", name)
	}
}

// Restart cuts connections; the server answers again afterwards, with its
// data. Stop and Start do the same in two steps.
func TestRestartStopStart(t *testing.T) {
	if os.Getenv(pgtest.EnvURL) != "" {
		t.Log("PG_URL is set: Restart, Stop and Start need the private server")
		return
	}
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	c := pgtestConnect(t, dsn)
	if _, err := c.Exec(ctx, "CREATE TABLE kept (x int); INSERT INTO kept VALUES (7)"); err != nil {
		t.Fatal(err)
	}
	check := func(step string) {
		t.Helper()
		var x int
		if err := pgtestConnect(t, dsn).QueryRow(ctx, "SELECT x FROM kept").Scan(&x); err != nil || x != 7 {
			t.Fatalf("after %s: x = %d, %v; want 7", step, x, err)
		}
	}
	pgtest.Restart(t)
	if _, err := c.Exec(ctx, "SELECT 1"); err == nil {
		t.Error("a connection from before the restart still works")
	}
	check("restart")

	pgtest.Stop(t)
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if conn, err := pgx.Connect(cctx, dsn); err == nil {
		conn.Close(ctx)
		t.Fatal("connected to a stopped server")
	}
	pgtest.Start(t)
	check("stop and start")
}
