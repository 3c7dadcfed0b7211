package sinks

import (
	"errors"
	"net/http"
	"net/netip"
	"strings"
	"testing"
)

// TestRefusedAddr: only global unicast addresses outside the special
// ranges may be reached without --allow-private-sinks.
func TestRefusedAddr(t *testing.T) {
	for _, a := range []string{"127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1",
		"0.1.2.3", "0.0.0.0", "198.18.0.1", "240.0.0.1", "255.255.255.255", "224.0.0.1", "::1", "fe80::1", "fd00:ec2::254",
		"64:ff9b::a9fe:a9fe", "2002:a9fe:a9fe::1", "::ffff:169.254.169.254", "::a9fe:a9fe", "fec0::1"} {
		if refusedAddr(netip.MustParseAddr(a)) == "" {
			t.Errorf("%s is allowed", a)
		}
	}
	for _, a := range []string{"93.184.216.34", "8.8.8.8", "2606:4700::1111"} {
		if r := refusedAddr(netip.MustParseAddr(a)); r != "" {
			t.Errorf("%s refused: %s", a, r)
		}
	}
}

// TestErrorsDoNotQuoteTheURL: a Slack URL is a secret; errors that reach
// the status, logs and dead letters leave it out.
func TestErrorsDoNotQuoteTheURL(t *testing.T) {
	c := newClient(true)
	err := post(t.Context(), c, "http://127.0.0.1:1/services/T000/B000/s3cretpath", http.Header{}, []byte("{}"))
	if err == nil || strings.Contains(err.Error(), "s3cretpath") {
		t.Fatalf("error %v", err)
	}
	var perm *permanentError
	if errors.As(err, &perm) {
		t.Fatalf("a connection refused is retried, got permanent %v", err)
	}
}
