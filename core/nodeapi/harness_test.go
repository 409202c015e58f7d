package nodeapi

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/request/bearertoken"
	"k8s.io/apiserver/pkg/authentication/request/union"
	x509request "k8s.io/apiserver/pkg/authentication/request/x509"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
)

// harness runs a Server over real TLS on loopback for one test.
type harness struct {
	t        *testing.T
	base     string // https://127.0.0.1:port
	serverCA *testCA
	clientCA *testCA
	pods     *fakePods
	authz    *fakeAuthz
	logs     *syncBuffer
	stop     context.CancelFunc
	done     chan error
	clients  []*http.Client
}

// tokens the harness's authenticator accepts, and the users they name.
var testTokens = map[string]string{
	"token-admin":  "admin",
	"token-node-b": "viewer-b",
}

func startServer(t *testing.T, pods *fakePods) *harness {
	t.Helper()
	return startServerWith(t, pods, func(h *harness, _ string) (authenticator.Request, authorizer.Authorizer) {
		return h.authenticator(), authorizer.AuthorizerFunc(h.authz.Authorize)
	})
}

// startServerWith runs the server with the authenticator and authorizer auth builds, given the
// harness and the client CA file.
func startServerWith(t *testing.T, pods *fakePods, auth func(h *harness, clientCAFile string) (authenticator.Request, authorizer.Authorizer)) *harness {
	t.Helper()
	dir := t.TempDir()
	h := &harness{
		t:        t,
		serverCA: newTestCA(t, "serving-ca"),
		clientCA: newTestCA(t, "client-ca"),
		pods:     pods,
		logs:     &syncBuffer{},
		authz: &fakeAuthz{grants: map[string][]string{
			"admin":                         {"*"},
			"kube-apiserver-kubelet-client": {"*"},
			"viewer-a":                      {"node-a"},
			"viewer-b":                      {"node-b"},
		}},
	}
	certFile, keyFile := writeFiles(t, dir, "serving", h.serverCA.serving(t))
	caFile := filepath.Join(dir, "client-ca.crt")
	writeFile(t, caFile, h.clientCA.pem)
	authn, authz := auth(h, caFile)

	log := slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, err := New(Config{Address: "127.0.0.1:0", CertFile: certFile, KeyFile: keyFile, ClientCAFile: caFile},
		pods, authn, authz, log)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	h.base = "https://" + srv.Addr().String()

	ctx, cancel := context.WithCancel(context.Background())
	h.stop, h.done = cancel, make(chan error, 1)
	go func() { h.done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		if err := h.shutdown(); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return h
}

// shutdown stops the server and returns what Run returned. Safe to call more than once.
func (h *harness) shutdown() error {
	// Idle HTTP/2 connections would hold a graceful shutdown for the server's GOAWAY timeout.
	for _, c := range h.clients {
		c.CloseIdleConnections()
	}
	h.stop()
	err, ok := <-h.done
	if ok {
		close(h.done)
	}
	return err
}

// authenticator is the library's own x509 authenticator against the test client CA, and a
// bearer-token one with fixed tokens in place of TokenReview.
func (h *harness) authenticator() authenticator.Request {
	certs := x509request.New(x509.VerifyOptions{
		Roots:     h.clientCA.pool(),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, x509request.CommonNameUserConversion)
	tokens := bearertoken.New(authenticator.TokenFunc(func(_ context.Context, token string) (*authenticator.Response, bool, error) {
		name, ok := testTokens[token]
		if !ok {
			return nil, false, nil
		}
		return &authenticator.Response{User: &user.DefaultInfo{Name: name}}, true, nil
	}))
	return union.New(certs, tokens)
}

// client returns an HTTPS client that trusts the serving CA and presents cert, if given, whatever
// CAs the server names (Go's client would otherwise hold back a certificate from another CA).
func (h *harness) client(cert *tls.Certificate) *http.Client { return h.clientProto(cert, true) }

// clientProto is client, speaking HTTP/2 or HTTP/1.1.
func (h *harness) clientProto(cert *tls.Certificate, http2 bool) *http.Client {
	cfg := &tls.Config{RootCAs: h.serverCA.pool()}
	if cert != nil {
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: http2}}
	h.clients = append(h.clients, c)
	return c
}

// get sends GET path (with a bearer token if given) and returns the status and body.
func (h *harness) get(c *http.Client, path, token string) (int, string) {
	h.t.Helper()
	resp := h.do(c, path, token)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatalf("GET %s: read body: %v", path, err)
	}
	return resp.StatusCode, string(body)
}

func (h *harness) do(c *http.Client, path, token string) *http.Response {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodGet, h.base+path, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		h.t.Fatalf("GET %s: %v", path, err)
	}
	return resp
}

// fakePods serves pods from maps, or through logsFn when a test sets it.
type fakePods struct {
	nodes  map[string]string // "namespace/pod" → node
	logs   map[string]string // "namespace/pod/container" → log
	logsFn func(ctx context.Context, opts LogOptions, w io.Writer) error

	mu    sync.Mutex
	calls []LogOptions
}

func (p *fakePods) NodeOf(namespace, name string) (string, bool) {
	node, ok := p.nodes[namespace+"/"+name]
	return node, ok
}

func (p *fakePods) ContainerLogs(ctx context.Context, namespace, name string, opts LogOptions, w io.Writer) error {
	p.mu.Lock()
	p.calls = append(p.calls, opts)
	p.mu.Unlock()
	if p.logsFn != nil {
		return p.logsFn(ctx, opts, w)
	}
	log, ok := p.logs[namespace+"/"+name+"/"+opts.Container]
	if !ok {
		return fmt.Errorf("container %s of pod %s/%s: %w", opts.Container, namespace, name, ErrNotFound)
	}
	_, err := io.WriteString(w, log)
	return err
}

func (p *fakePods) callCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.calls)
}

func (p *fakePods) lastCall(t *testing.T) LogOptions {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.calls) == 0 {
		t.Fatal("ContainerLogs was not called")
	}
	return p.calls[len(p.calls)-1]
}

// fakeAuthz allows get on nodes/proxy to users granted the node ("*": every node, including a
// request that names none) and records what it was asked.
type fakeAuthz struct {
	grants map[string][]string

	mu   sync.Mutex
	seen []authorizer.Attributes
}

func (a *fakeAuthz) Authorize(_ context.Context, attrs authorizer.Attributes) (authorizer.Decision, string, error) {
	a.mu.Lock()
	a.seen = append(a.seen, attrs)
	a.mu.Unlock()
	if attrs.GetVerb() != "get" || attrs.GetResource() != "nodes" || attrs.GetSubresource() != "proxy" {
		return authorizer.DecisionNoOpinion, "only get on nodes/proxy is granted", nil
	}
	for _, node := range a.grants[attrs.GetUser().GetName()] {
		if node == "*" || (node == attrs.GetName() && node != "") {
			return authorizer.DecisionAllow, "", nil
		}
	}
	return authorizer.DecisionNoOpinion, "no grant for this node", nil
}

func (a *fakeAuthz) last(t *testing.T) authorizer.Attributes {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.seen) == 0 {
		t.Fatal("the authorizer was not asked")
	}
	return a.seen[len(a.seen)-1]
}

// syncBuffer is a bytes.Buffer safe for the server's goroutines and the test's.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// logLine stops the server, so every handler has returned and logged, and returns the
// access-log line for path, or fails.
func (h *harness) logLine(path string) string {
	t := h.t
	t.Helper()
	if err := h.shutdown(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	b := h.logs
	for _, line := range strings.Split(b.String(), "\n") {
		if strings.Contains(line, `msg="node API request"`) && strings.Contains(line, "path="+path) {
			return line
		}
	}
	t.Fatalf("no access-log line for %s in:\n%s", path, b.String())
	return ""
}
