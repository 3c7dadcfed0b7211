package store_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/leadrouter/leadrouter/internal/redisproc"
	"github.com/leadrouter/leadrouter/internal/testpki"
	"github.com/leadrouter/leadrouter/store"
)

// TestOpenTLSWithACLUser: a rediss:// URL with an ACL user and the CA that
// signs the server's certificate connects; a wrong password or an unknown
// CA does not.
func TestOpenTLSWithACLUser(t *testing.T) {
	pki := testpki.New(t)
	port, err := redisproc.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf(`port 0
tls-port %d
bind 127.0.0.1
tls-cert-file %s
tls-key-file %s
tls-ca-cert-file %s
tls-auth-clients no
save ""
appendonly no
dir %s
user default off
user router on >s3cret ~* &* +@all
`, port, pki.ServerCert, pki.ServerKey, pki.CA, t.TempDir())
	confFile := t.TempDir() + "/redis.conf"
	if err := os.WriteFile(confFile, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("redis-server", confFile)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })

	url := fmt.Sprintf("rediss://router:s3cret@127.0.0.1:%d/0", port)
	open := func(url string, o store.OpenOptions) error {
		// Generous: a refused handshake is retried, and the machine may be
		// busy; what is checked is the error, not the time.
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		s, err := store.Open(ctx, url, o)
		if err == nil {
			s.Close()
		}
		return err
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := open(url, store.OpenOptions{CAFile: pki.CA})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("rediss with the CA and the ACL user: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := open(strings.Replace(url, "s3cret", "wrong", 1), store.OpenOptions{CAFile: pki.CA}); err == nil ||
		!strings.Contains(err.Error(), "WRONGPASS") {
		t.Errorf("wrong password: %v, want WRONGPASS", err)
	}
	if err := open(url, store.OpenOptions{}); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("without the CA: %v, want a certificate error", err)
	}
	if err := open(fmt.Sprintf("redis://127.0.0.1:%d/0", port), store.OpenOptions{CAFile: pki.CA}); err == nil {
		t.Error("a CA with a redis:// URL was accepted")
	}
}
