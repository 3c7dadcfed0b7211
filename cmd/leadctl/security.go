package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"gopkg.in/yaml.v3"

	"github.com/leadrouter/leadrouter/auth"
)

// transport holds the connection flags: TLS (with optional client
// certificate) and the bearer token.
type transport struct {
	tls                    bool
	ca, cert, key, sniName string
	token                  string
}

func (t *transport) flags(fs *flag.FlagSet) {
	fs.BoolVar(&t.tls, "tls", os.Getenv("LEADROUTER_TLS") != "", "connect over TLS, verifying the server with the system's CAs (LEADROUTER_TLS)")
	fs.StringVar(&t.ca, "ca", os.Getenv("LEADROUTER_CA"), "connect over TLS, verifying the server with this CA (PEM) (LEADROUTER_CA)")
	fs.StringVar(&t.cert, "cert", os.Getenv("LEADROUTER_CERT"), "client certificate (PEM) for mTLS (LEADROUTER_CERT)")
	fs.StringVar(&t.key, "key", os.Getenv("LEADROUTER_KEY"), "client key (PEM) for mTLS (LEADROUTER_KEY)")
	fs.StringVar(&t.sniName, "server-name", "", "name the server's certificate must carry (default: the address's host)")
	fs.StringVar(&t.token, "token", os.Getenv("LEADROUTER_TOKEN"), "bearer token (LEADROUTER_TOKEN; prefer the variable: flags show in ps)")
}

// dialOptions builds the connection's credentials.
func (t *transport) dialOptions() ([]grpc.DialOption, error) {
	var opts []grpc.DialOption
	secure := t.tls || t.ca != "" || t.cert != ""
	if !secure {
		opts = append(opts, grpc.WithTransportCredentials(insecure.NewCredentials()))
	} else {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.sniName}
		if t.ca != "" {
			pem, err := os.ReadFile(t.ca)
			if err != nil {
				return nil, err
			}
			cfg.RootCAs = x509.NewCertPool()
			if !cfg.RootCAs.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("--ca %s: no PEM certificates", t.ca)
			}
		}
		if (t.cert == "") != (t.key == "") {
			return nil, errors.New("--cert and --key go together")
		}
		if t.cert != "" {
			c, err := tls.LoadX509KeyPair(t.cert, t.key)
			if err != nil {
				return nil, err
			}
			cfg.Certificates = []tls.Certificate{c}
		}
		opts = append(opts, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	}
	if t.token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(bearer{token: t.token}))
	}
	return opts, nil
}

// bearer sends the token in the authorization metadata of every call.
type bearer struct {
	token string
}

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + b.token}, nil
}

// RequireTransportSecurity is false so a token works against a local
// --insecure server too; over the network, use TLS.
func (b bearer) RequireTransportSecurity() bool { return false }

// tokenCommand creates a token and prints it with its token-file entry, or
// appends the entry to a token file (--file; created when missing).
func tokenCommand(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	var e auth.Entry
	var role, file string
	fs.StringVar(&e.Workspace, "workspace", "default", "workspace the token is bound to")
	fs.StringVar(&role, "role", "", "intake, rep, manager or admin")
	fs.StringVar(&e.RepID, "rep", "", "the rep a rep token acts for")
	fs.StringVar(&e.Name, "name", "", "a name for logs (e.g. web-forms, ava-desktop)")
	fs.Float64Var(&e.AssignRate, "assign-rate", 0, "this token's AssignLead calls per second (0: the server's --assign-rate)")
	fs.IntVar(&e.AssignBurst, "assign-burst", 0, "this token's AssignLead burst")
	fs.StringVar(&file, "file", "", "append the entry to this token file (then kill -HUP leadrouterd)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	e.Role = auth.Role(role)
	token, entry, err := auth.NewToken(e)
	if err != nil {
		return err
	}
	var f auth.File
	if file != "" {
		body, err := os.ReadFile(file)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		if err := yaml.Unmarshal(body, &f); err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
	}
	f.Tokens = append(f.Tokens, entry)
	body, err := yaml.Marshal(f)
	if err != nil {
		return err
	}
	// The file must load: check it the way the server will.
	if _, err := auth.ParseFile(bytes.NewReader(body)); err != nil {
		return err
	}
	fmt.Fprintf(out, "# token (shown once; give it to the client, e.g. as LEADROUTER_TOKEN):\n# %s\n", token)
	if file == "" {
		fmt.Fprintf(out, "# token file entry (add it under tokens: in the --token-file, then kill -HUP leadrouterd):\n%s", body)
		return nil
	}
	tmp := file + ".tmp"
	if err := os.WriteFile(tmp, body, 0o600); err != nil {
		return err
	}
	if err := os.Rename(tmp, file); err != nil {
		return err
	}
	fmt.Fprintf(out, "# added to %s (%d tokens): kill -HUP leadrouterd to load it\n", file, len(f.Tokens))
	return nil
}
