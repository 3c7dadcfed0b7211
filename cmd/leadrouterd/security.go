package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/leadrouter/leadrouter/auth"
	"github.com/leadrouter/leadrouter/server"
)

// security is the gRPC listener's transport and the token check, both
// reloaded from their files on SIGHUP.
type security struct {
	o    *options
	log  *slog.Logger
	cert atomic.Pointer[tls.Certificate]
	auth *server.Auth // nil: auth off
}

// newSecurity checks the transport and auth flags together and loads their
// files. Plaintext needs --insecure; TLS needs tokens (a TLS listener that
// lets every caller do everything would only look safe).
func newSecurity(o *options, log *slog.Logger) (*security, error) {
	s := &security{o: o, log: log}
	tlsOn := o.tlsCert != "" || o.tlsKey != ""
	switch {
	case tlsOn && (o.tlsCert == "" || o.tlsKey == ""):
		return nil, errors.New("--tls-cert and --tls-key go together")
	case o.tlsClientCA != "" && !tlsOn:
		return nil, errors.New("--tls-client-ca needs --tls-cert and --tls-key")
	case tlsOn && o.insecure:
		return nil, errors.New("--insecure and --tls-cert contradict each other: choose one")
	case !tlsOn && !o.insecure:
		return nil, errors.New("refusing to serve plaintext gRPC: give --tls-cert and --tls-key, or --insecure for local development")
	case tlsOn && o.tokenFile == "" && o.jwtKey == "":
		return nil, errors.New("--tls-cert needs --token-file or --jwt-key: without tokens every caller could do everything")
	case o.jwtKey == "" && (o.jwtIssuer != "" || o.jwtAudience != ""):
		return nil, errors.New("--jwt-issuer and --jwt-audience need --jwt-key")
	}
	if tlsOn {
		if err := s.loadCert(); err != nil {
			return nil, err
		}
	}
	if o.tokenFile != "" || o.jwtKey != "" {
		t, err := s.loadCredentials()
		if err != nil {
			return nil, err
		}
		s.auth = server.NewAuth(t, server.AuthOptions{AssignRate: o.assignRate, AssignBurst: o.assignBurst,
			WriteRate: o.writeRate, WriteBurst: o.writeBurst, ReadRate: o.readRate, ReadBurst: o.readBurst,
			StreamRate: o.streamRate, StreamBurst: o.streamBurst, MaxEventStreams: o.maxEventStreams})
		log.Info("bearer tokens required", "file", o.tokenFile, "tokens", t.Len(), "jwt_key", o.jwtKey)
	}
	switch {
	case o.insecure && s.auth == nil:
		log.Warn("INSECURE: plaintext gRPC and no --token-file: auth is off, every caller may do everything")
	case o.insecure:
		log.Warn("INSECURE: plaintext gRPC (--insecure): tokens and leads cross the network unencrypted")
	}
	return s, nil
}

// loadCredentials loads the token file and the JWT key, whichever are
// given.
func (s *security) loadCredentials() (*auth.Tokens, error) {
	var t *auth.Tokens
	if s.o.tokenFile != "" {
		var err error
		if t, err = auth.LoadFile(s.o.tokenFile); err != nil {
			return nil, err
		}
	}
	if s.o.jwtKey != "" {
		j, err := auth.LoadJWT(s.o.jwtKey, auth.JWTOptions{Issuer: s.o.jwtIssuer, Audience: s.o.jwtAudience})
		if err != nil {
			return nil, fmt.Errorf("--jwt-key: %w", err)
		}
		t = t.WithJWT(j)
		s.log.Info("JWTs accepted", "key", s.o.jwtKey, "algorithms", j.Algorithms(), "issuer", s.o.jwtIssuer, "audience", s.o.jwtAudience)
	}
	return t, nil
}

func (s *security) loadCert() error {
	c, err := tls.LoadX509KeyPair(s.o.tlsCert, s.o.tlsKey)
	if err != nil {
		return fmt.Errorf("--tls-cert/--tls-key: %w", err)
	}
	s.cert.Store(&c)
	return nil
}

// tlsConfig is the listeners' TLS (nil with --insecure): the gRPC and
// the HTTP listener share the certificate (reloaded on SIGHUP) and, with
// --tls-client-ca, require client certificates alike.
func (s *security) tlsConfig() (*tls.Config, error) {
	if s.o.insecure {
		return nil, nil
	}
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return s.cert.Load(), nil
		},
	}
	if s.o.tlsClientCA != "" {
		pem, err := os.ReadFile(s.o.tlsClientCA)
		if err != nil {
			return nil, fmt.Errorf("--tls-client-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--tls-client-ca %s: no PEM certificates", s.o.tlsClientCA)
		}
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// serverOption is the gRPC listener's transport credentials (none with
// --insecure).
func (s *security) serverOption() ([]grpc.ServerOption, error) {
	cfg, err := s.tlsConfig()
	if err != nil || cfg == nil {
		return nil, err
	}
	if s.o.tlsClientCA != "" {
		s.log.Info("client certificates required (mTLS)", "ca", s.o.tlsClientCA)
	}
	s.log.Info("gRPC over TLS", "cert", s.o.tlsCert)
	return []grpc.ServerOption{grpc.Creds(credentials.NewTLS(cfg))}, nil
}

// reloadOnHUP reloads the token file, the JWT key and the certificate on every SIGHUP
// until ctx ends. Open connections are untouched and open streams whose
// tokens no longer qualify end (server.Auth.SetTokens); a file that
// does not load leaves the previous one in force.
func (s *security) reloadOnHUP(ctx context.Context) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			s.reload()
		}
	}
}

func (s *security) reload() {
	if s.auth != nil {
		t, err := s.loadCredentials()
		if err != nil {
			s.log.Error("SIGHUP: tokens not reloaded; the previous ones stay in force", "err", err)
		} else {
			s.auth.SetTokens(t)
			s.log.Info("SIGHUP: tokens reloaded", "file", s.o.tokenFile, "tokens", t.Len(), "jwt_key", s.o.jwtKey)
		}
	}
	if s.o.tlsCert != "" {
		if err := s.loadCert(); err != nil {
			s.log.Error("SIGHUP: certificate not reloaded; the previous one stays in force", "err", err)
		} else {
			s.log.Info("SIGHUP: certificate reloaded", "cert", s.o.tlsCert)
		}
	}
}
