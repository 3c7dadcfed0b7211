package sinks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// newClient is the HTTP client of the webhook and Slack sinks. It never
// follows a redirect (a 3xx is a failed delivery, its reason naming the
// Location), uses no proxy from the environment, and unless allowPrivate
// refuses to connect to loopback, private, link-local (the cloud metadata
// address 169.254.169.254 among them), CGNAT, multicast and unspecified
// addresses: the check runs on the address actually dialled, after DNS,
// so a name that resolves to one is refused too.
func newClient(allowPrivate bool) *http.Client {
	d := &net.Dialer{Timeout: 10 * time.Second}
	if !allowPrivate {
		d.Control = func(network, address string, _ syscall.RawConn) error {
			host, _, err := net.SplitHostPort(address)
			if err != nil {
				return err
			}
			ip, err := netip.ParseAddr(host)
			if err != nil {
				return err
			}
			if reason := refusedAddr(ip); reason != "" {
				return &refusedError{addr: ip, reason: reason}
			}
			return nil
		}
	}
	return &http.Client{
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         d.DialContext,
			MaxIdleConnsPerHost: 64,
			IdleConnTimeout:     90 * time.Second,
			TLSHandshakeTimeout: 10 * time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// special are ranges beyond the net/netip predicates that are not the
// public internet, or that embed an IPv4 address a gateway may reach.
var special = func() []netip.Prefix {
	var out []netip.Prefix
	for _, p := range []string{"0.0.0.0/8", "100.64.0.0/10", "192.0.0.0/24", "198.18.0.0/15", "240.0.0.0/4",
		"64:ff9b::/96", "64:ff9b:1::/48", "2002::/16", "::/96", "fec0::/10", "2001::/32"} {
		out = append(out, netip.MustParsePrefix(p))
	}
	return out
}()

// refusedAddr says why a sink may not connect to ip ("" when it may).
func refusedAddr(ip netip.Addr) string {
	ip = ip.Unmap()
	switch {
	case ip.IsLoopback():
		return "loopback"
	case ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast():
		return "link-local (cloud metadata lives there)"
	case ip.IsPrivate():
		return "private"
	case ip.IsUnspecified() || ip.IsMulticast() || ip.IsInterfaceLocalMulticast() || !ip.IsGlobalUnicast():
		return "not a global unicast address"
	}
	for _, p := range special {
		if p.Contains(ip) {
			return "in the special range " + p.String()
		}
	}
	return ""
}

// refusedError: the sink's target resolved to an address it may not reach.
type refusedError struct {
	addr   netip.Addr
	reason string
}

func (e *refusedError) Error() string {
	return fmt.Sprintf("address %s is %s: refused (leadrouterd --allow-private-sinks allows it)", e.addr, e.reason)
}

// withoutURL is err without the URL net/http quotes in it: a Slack URL is
// itself a secret, and errors reach logs, the status and dead letters.
func withoutURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", strings.ToLower(ue.Op), ue.Err)
	}
	return err
}

// post sends body to url with the headers and classifies the answer: nil
// for a 2xx; a retryable error for a 408, a 429, a 5xx, a timeout or a
// connection error; a *permanentError for a refused address, a redirect
// or any other status.
func post(ctx context.Context, c *http.Client, target string, header http.Header, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return permanent("the request cannot be built: %v", withoutURL(err))
	}
	req.Header = header
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "leadrouter-sink/1")
	resp, err := c.Do(req)
	if err != nil {
		var refused *refusedError
		if errors.As(err, &refused) {
			return permanent("%v", refused)
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return errors.New("no answer within the timeout")
		}
		return withoutURL(err)
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // reuse the connection
	text := strings.TrimSpace(strings.ToValidUTF8(string(snippet), "?"))
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		return nil
	case code >= 300 && code < 400:
		return permanent("HTTP %d: redirect to %q not followed", code, resp.Header.Get("Location"))
	case code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500:
		return fmt.Errorf("HTTP %d: %s", code, text)
	default:
		return permanent("HTTP %d: %s", code, text)
	}
}
