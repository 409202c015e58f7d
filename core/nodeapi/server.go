// Package nodeapi serves the kubelet-compatible HTTPS API that kube-apiserver calls on a node's
// address, for `kubectl logs`. One server answers for every node of the agent: the node named in
// each authorization check is the one that runs the pod asked for.
package nodeapi

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authorization/authorizer"
)

// Config says where and with which certificates the node API listens.
type Config struct {
	// Address is the host:port to listen on (port 0 picks a free port; see Server.Addr).
	Address string
	// CertFile and KeyFile hold the serving certificate and its key (PEM). Required: the node
	// API never serves plain HTTP.
	CertFile string
	KeyFile  string
	// ClientCAFile holds the CA bundle (PEM) that signs the client certificates callers present,
	// such as kube-apiserver's kubelet client certificate. The TLS layer only advertises it;
	// the authenticator verifies certificates. Optional: without it only tokens authenticate.
	ClientCAFile string
}

// shutdownGrace bounds how long Run waits for requests in flight once its context is done.
const shutdownGrace = 10 * time.Second

// Server is the node API server. Create it with New, serve with Run.
type Server struct {
	log   *slog.Logger
	pods  Pods
	authn authenticator.Request
	authz authorizer.Authorizer

	ln   net.Listener
	srv  *http.Server
	cert *servingCert

	// stopping ends when Run begins to shut down; follow streams watch it, because they never
	// end on their own and would hold a graceful shutdown open.
	stopping context.Context
	stop     context.CancelFunc
}

// New checks the config, loads the certificates and binds the listening address, so that a bad
// config or a taken port fails here and Addr is known before Run. Call Run to serve (and to
// release the address: Run with a done context returns at once).
func New(cfg Config, pods Pods, authn authenticator.Request, authz authorizer.Authorizer, log *slog.Logger) (*Server, error) {
	if pods == nil || authn == nil || authz == nil {
		return nil, errors.New("node API: pods, authenticator and authorizer are required")
	}
	if log == nil {
		log = slog.Default()
	}
	cert, err := serverTLS(cfg)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Address)
	if err != nil {
		return nil, fmt.Errorf("node API: listen on %s: %w", cfg.Address, err)
	}
	s := &Server{log: log, pods: pods, authn: authn, authz: authz, ln: ln, cert: cert}
	s.stopping, s.stop = context.WithCancel(context.Background())
	s.srv = &http.Server{
		Handler:           s.routes(),
		TLSConfig:         cert.config(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       90 * time.Second,
		// Handshake failures from scanners and bad clients are noise at the default level.
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Run serves until ctx is done, then shuts down gracefully: it stops accepting, ends follow
// streams, and gives other requests in flight a grace period before closing their connections.
func (s *Server) Run(ctx context.Context) error {
	defer s.stop()
	certCtx, stopCert := context.WithCancel(ctx)
	var certDone sync.WaitGroup
	certDone.Go(func() { s.cert.run(certCtx) })
	defer certDone.Wait()
	defer stopCert()
	served := make(chan error, 1)
	go func() { served <- s.srv.ServeTLS(s.ln, "", "") }()
	s.log.Info("node API serving", "address", s.ln.Addr().String())

	select {
	case err := <-served:
		return fmt.Errorf("serve node API on %s: %w", s.ln.Addr(), err)
	case <-ctx.Done():
	}

	s.stop()
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
	defer cancel()
	if err := s.srv.Shutdown(shutdownCtx); err != nil {
		s.log.Warn("node API: requests still running after the grace period; closing them", "error", err)
		s.srv.Close()
	}
	<-served // ServeTLS returns http.ErrServerClosed as soon as Shutdown begins
	s.log.Info("node API stopped")
	return nil
}

// serverTLS builds the TLS config the kubelet uses: TLS 1.2 or newer, client certificates
// requested but not verified by TLS, so that one port takes both client certificates and bearer
// tokens; the authenticator verifies certificates against the client CA. The serving
// certificate is reloaded when its files change (servingCert).
func serverTLS(cfg Config) (*servingCert, error) {
	if cfg.CertFile == "" || cfg.KeyFile == "" {
		return nil, errors.New("node API: a serving certificate and key are required")
	}
	base := &tls.Config{
		MinVersion: tls.VersionTLS12,
		ClientAuth: tls.RequestClientCert,
		// The config each handshake gets is this one: HTTP/2 must be offered here.
		NextProtos: []string{"h2", "http/1.1"},
	}
	if cfg.ClientCAFile != "" {
		pem, err := os.ReadFile(cfg.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("node API: read client CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("node API: no certificate found in client CA file %s", cfg.ClientCAFile)
		}
		// Advertised in the handshake so clients pick the right certificate.
		base.ClientCAs = pool
	}
	return newServingCert(cfg.CertFile, cfg.KeyFile, base)
}

// routes: /healthz is open, as the kubelet's is; everything else needs an authenticated user.
func (s *Server) routes() http.Handler {
	authenticated := http.NewServeMux()
	authenticated.HandleFunc("GET /containerLogs/{namespace}/{pod}/{container}", s.containerLogs)
	authenticated.HandleFunc("GET /exec/{namespace}/{pod}/{container}", s.exec)
	authenticated.HandleFunc("POST /exec/{namespace}/{pod}/{container}", s.exec)
	authenticated.HandleFunc("GET /attach/{namespace}/{pod}/{container}", s.attach)
	authenticated.HandleFunc("POST /attach/{namespace}/{pod}/{container}", s.attach)
	authenticated.HandleFunc("GET /portForward/{namespace}/{pod}", s.portForward)
	authenticated.HandleFunc("POST /portForward/{namespace}/{pod}", s.portForward)
	authenticated.Handle("GET /debug/pprof/", s.debugProfiles())

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", healthz)
	mux.Handle("/", s.authenticate(authenticated))
	return s.accessLog(mux)
}

func healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok"))
}
