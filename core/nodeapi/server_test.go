package nodeapi

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authorization/authorizer"
)

const logsPath = "/containerLogs/default/web/app"

func webPods() *fakePods {
	return &fakePods{
		nodes: map[string]string{"default/web": "node-a"},
		logs:  map[string]string{"default/web/app": "line 1\nline 2\n"},
	}
}

func TestHealthzNeedsNoAuthentication(t *testing.T) {
	h := startServer(t, webPods())
	status, body := h.get(h.client(nil), "/healthz", "")
	if status != http.StatusOK || body != "ok" {
		t.Fatalf("GET /healthz = %d %q, want 200 ok", status, body)
	}
}

func TestAnonymousIsUnauthorized(t *testing.T) {
	h := startServer(t, webPods())
	for _, path := range []string{logsPath, "/pods", "/containerLogs/default/unknown/app"} {
		if status, _ := h.get(h.client(nil), path, ""); status != http.StatusUnauthorized {
			t.Errorf("anonymous GET %s = %d, want 401", path, status)
		}
	}
	if status, _ := h.get(h.client(nil), logsPath, "not-a-token"); status != http.StatusUnauthorized {
		t.Errorf("GET with an unknown token = %d, want 401", status)
	}
	if n := h.pods.callCount(); n != 0 {
		t.Errorf("the backend was called %d times for unauthenticated requests", n)
	}
}

func TestClientCertificateFromAnotherCAIsUnauthorized(t *testing.T) {
	h := startServer(t, webPods())
	rogue := newTestCA(t, "rogue-ca").client(t, "kube-apiserver-kubelet-client")
	if status, _ := h.get(h.client(&rogue), logsPath, ""); status != http.StatusUnauthorized {
		t.Fatalf("GET with a certificate from another CA = %d, want 401", status)
	}
	// The certificate reached the authenticator and failed verification, rather than not
	// being sent at all.
	if line := h.logLine(logsPath); !strings.Contains(line, "x509") {
		t.Errorf("access log does not show the certificate being refused: %s", line)
	}
}

func TestClientCertificateAuthorizedGetsLogs(t *testing.T) {
	h := startServer(t, webPods())
	cert := h.clientCA.client(t, "kube-apiserver-kubelet-client", "kubelet-api-admin")
	status, body := h.get(h.client(&cert), logsPath, "")
	if status != http.StatusOK || body != "line 1\nline 2\n" {
		t.Fatalf("GET %s = %d %q, want 200 with the log", logsPath, status, body)
	}

	attrs := h.authz.last(t)
	if attrs.GetUser().GetName() != "kube-apiserver-kubelet-client" || attrs.GetVerb() != "get" ||
		attrs.GetAPIVersion() != "v1" || attrs.GetResource() != "nodes" || attrs.GetSubresource() != "proxy" ||
		attrs.GetName() != "node-a" || attrs.GetNamespace() != "" || !attrs.IsResourceRequest() ||
		attrs.GetPath() != logsPath {
		t.Errorf("authorization attributes = %+v, want get nodes/proxy of node-a for the cert's user", attrs)
	}
	if got := h.pods.lastCall(t); got.Container != "app" || got.Follow {
		t.Errorf("ContainerLogs options = %+v, want container app, no follow", got)
	}
}

func TestBearerTokenAuthorizedGetsLogs(t *testing.T) {
	h := startServer(t, webPods())
	status, body := h.get(h.client(nil), logsPath, "token-admin")
	if status != http.StatusOK || body != "line 1\nline 2\n" {
		t.Fatalf("GET with a token = %d %q, want 200 with the log", status, body)
	}
}

func TestForbidden(t *testing.T) {
	h := startServer(t, webPods())
	// viewer-b may read logs on node-b only; web runs on node-a.
	status, body := h.get(h.client(nil), logsPath, "token-node-b")
	if status != http.StatusForbidden {
		t.Fatalf("GET by a user of another node = %d %q, want 403", status, body)
	}
	for _, want := range []string{"Forbidden", "user=viewer-b", "subresource=proxy", "name=node-a", "no grant for this node"} {
		if !strings.Contains(body, want) {
			t.Errorf("403 body %q does not say %q", body, want)
		}
	}
	if n := h.pods.callCount(); n != 0 {
		t.Errorf("the backend was called %d times for a forbidden request", n)
	}
}

func TestUnknownPod(t *testing.T) {
	h := startServer(t, webPods())
	const path = "/containerLogs/default/ghost/app"
	// A caller allowed on every node learns the pod is not here.
	if status, body := h.get(h.client(nil), path, "token-admin"); status != http.StatusNotFound || !strings.Contains(body, "default/ghost") {
		t.Errorf("GET unknown pod as admin = %d %q, want 404 naming the pod", status, body)
	}
	if attrs := h.authz.last(t); attrs.GetName() != "" || attrs.GetSubresource() != "proxy" {
		t.Errorf("unknown pod authorized as %+v, want nodes/proxy with no name (every node)", attrs)
	}
	// A caller allowed on one node cannot probe which pods exist.
	if status, _ := h.get(h.client(nil), path, "token-node-b"); status != http.StatusForbidden {
		t.Errorf("GET unknown pod by a one-node user = %d, want 403", status)
	}
}

func TestUnknownContainerIsNotFound(t *testing.T) {
	h := startServer(t, webPods())
	status, body := h.get(h.client(nil), "/containerLogs/default/web/sidecar", "token-admin")
	if status != http.StatusNotFound || !strings.Contains(body, "sidecar") {
		t.Fatalf("GET unknown container = %d %q, want 404 naming it", status, body)
	}
}

func TestBackendErrorIsInternal(t *testing.T) {
	pods := webPods()
	pods.logsFn = func(context.Context, LogOptions, io.Writer) error {
		return errors.New("read log file: disk on fire")
	}
	h := startServer(t, pods)
	status, body := h.get(h.client(nil), logsPath, "token-admin")
	if status != http.StatusInternalServerError || !strings.Contains(body, "disk on fire") {
		t.Fatalf("GET with a failing backend = %d %q, want 500 with the message", status, body)
	}
}

func TestUnknownPathAuthenticatedIsNotFound(t *testing.T) {
	h := startServer(t, webPods())
	if status, _ := h.get(h.client(nil), "/run/default/web/app", "token-admin"); status != http.StatusNotFound {
		t.Fatalf("GET /run = %d, want 404", status)
	}
}

func TestExecWithoutExecerIsNotImplemented(t *testing.T) {
	h := startServer(t, webPods())
	if status, _ := h.get(h.client(nil), "/exec/default/web/app?command=true", "token-admin"); status != http.StatusNotImplemented {
		t.Fatalf("GET /exec from an agent that cannot exec = %d, want 501", status)
	}
}

func TestFollowStreamsLinesAsTheyCome(t *testing.T) {
	// kube-apiserver may speak either protocol to a node; they buffer differently.
	for _, proto := range []struct {
		name  string
		http2 bool
	}{{"http2", true}, {"http1", false}} {
		t.Run(proto.name, func(t *testing.T) { testFollow(t, proto.http2) })
	}
}

func testFollow(t *testing.T, http2 bool) {
	pods := webPods()
	release := make(chan struct{})
	pods.logsFn = func(ctx context.Context, _ LogOptions, w io.Writer) error {
		if _, err := io.WriteString(w, "first\n"); err != nil {
			return err
		}
		// The second line waits until the reader has seen the first.
		select {
		case <-release:
		case <-ctx.Done():
			return ctx.Err()
		}
		_, err := io.WriteString(w, "second\n")
		return err
	}
	h := startServer(t, pods)
	req, err := http.NewRequest(http.MethodGet, h.base+logsPath+"?follow=true", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer token-admin")

	type firstLine struct {
		resp *http.Response
		r    *bufio.Reader
		line string
		err  error
	}
	c := h.clientProto(nil, http2)
	first := make(chan firstLine, 1)
	go func() {
		resp, err := c.Do(req)
		if err != nil {
			first <- firstLine{err: err}
			return
		}
		r := bufio.NewReader(resp.Body)
		line, err := r.ReadString('\n')
		first <- firstLine{resp, r, line, err}
	}()
	var got firstLine
	select {
	case got = <-first:
	case <-time.After(30 * time.Second):
		// Not a timing assertion: unflushed, neither the status nor the line would come while
		// the writer waits.
		close(release)
		t.Fatal("the first line did not reach the reader while the writer was still running")
	}
	if got.resp != nil {
		defer got.resp.Body.Close()
	}
	close(release)
	if got.err != nil || got.resp.StatusCode != http.StatusOK || got.line != "first\n" || (got.resp.ProtoMajor == 2) != http2 {
		t.Fatalf("first line = %q, %v; want 200 and %q over HTTP/2 %t", got.line, got.err, "first\n", http2)
	}
	rest, err := io.ReadAll(got.r)
	if err != nil || string(rest) != "second\n" {
		t.Fatalf("rest of the stream = %q, %v; want %q", rest, err, "second\n")
	}
	if !pods.lastCall(t).Follow {
		t.Error("ContainerLogs was not asked to follow")
	}
}

func TestShutdownEndsFollowStreams(t *testing.T) {
	pods := webPods()
	backendDone := make(chan error, 1)
	pods.logsFn = func(ctx context.Context, _ LogOptions, w io.Writer) error {
		if _, err := io.WriteString(w, "waiting\n"); err != nil {
			return err
		}
		<-ctx.Done() // a follow with nothing more to say
		backendDone <- ctx.Err()
		return ctx.Err()
	}
	h := startServer(t, pods)
	resp := h.do(h.client(nil), logsPath+"?follow=1", "token-admin")
	defer resp.Body.Close()
	r := bufio.NewReader(resp.Body)
	if line, err := r.ReadString('\n'); line != "waiting\n" {
		t.Fatalf("first line = %q, %v", line, err)
	}

	if err := h.shutdown(); err != nil {
		t.Fatalf("Run returned %v, want nil after a graceful shutdown", err)
	}
	if err := <-backendDone; !errors.Is(err, context.Canceled) {
		t.Errorf("backend context ended with %v, want canceled", err)
	}
	if rest, _ := io.ReadAll(r); len(rest) != 0 {
		t.Errorf("stream went on after shutdown: %q", rest)
	}
}

func TestLimitBytesIsEnforced(t *testing.T) {
	pods := webPods()
	pods.logsFn = func(_ context.Context, _ LogOptions, w io.Writer) error {
		for range 100 {
			if _, err := io.WriteString(w, "0123456789\n"); err != nil {
				return err
			}
		}
		return nil
	}
	h := startServer(t, pods)
	status, body := h.get(h.client(nil), logsPath+"?limitBytes=15", "token-admin")
	if status != http.StatusOK || body != "0123456789\n0123" {
		t.Fatalf("GET limitBytes=15 = %d %q, want 200 with the first 15 bytes", status, body)
	}
	if got := pods.lastCall(t).LimitBytes; got == nil || *got != 15 {
		t.Errorf("LimitBytes passed to the backend = %v, want 15", got)
	}
}

func TestQueryParametersReachTheBackend(t *testing.T) {
	h := startServer(t, webPods())
	q := "?follow=true&timestamps=true&previous=true&tailLines=10&limitBytes=4096&sinceTime=2026-03-01T10:20:30Z"
	if status, body := h.get(h.client(nil), logsPath+q, "token-admin"); status != http.StatusOK {
		t.Fatalf("GET %s = %d %q", q, status, body)
	}
	got := h.pods.lastCall(t)
	wantSince := time.Date(2026, 3, 1, 10, 20, 30, 0, time.UTC)
	if got.Container != "app" || !got.Follow || !got.Timestamps || !got.Previous ||
		got.TailLines == nil || *got.TailLines != 10 || got.LimitBytes == nil || *got.LimitBytes != 4096 ||
		got.SinceSeconds != nil || got.SinceTime == nil || !got.SinceTime.Equal(wantSince) {
		t.Errorf("LogOptions = %+v, want all of the query", got)
	}

	if status, _ := h.get(h.client(nil), logsPath+"?sinceSeconds=60", "token-admin"); status != http.StatusOK {
		t.Fatalf("GET sinceSeconds = %d", status)
	}
	if got := h.pods.lastCall(t).SinceSeconds; got == nil || *got != 60 {
		t.Errorf("SinceSeconds = %v, want 60", got)
	}
}

func TestBadQueryParameterIsBadRequest(t *testing.T) {
	h := startServer(t, webPods())
	for _, tc := range []struct{ query, param string }{
		{"tailLines=ten", "tailLines"},
		{"tailLines=-1", "tailLines"},
		{"sinceTime=yesterday", "sinceTime"},
		{"sinceSeconds=0", "sinceSeconds"},
		{"limitBytes=0", "limitBytes"},
		{"sinceSeconds=5&sinceTime=2026-03-01T10:20:30Z", "sinceSeconds"},
		{"stream=Stderr", "stream"},
	} {
		status, body := h.get(h.client(nil), logsPath+"?"+tc.query, "token-admin")
		if status != http.StatusBadRequest || !strings.Contains(body, tc.param) {
			t.Errorf("GET ?%s = %d %q, want 400 naming %s", tc.query, status, body, tc.param)
		}
	}
}

func TestTLSBelow12IsRefused(t *testing.T) {
	h := startServer(t, webPods())
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs: h.serverCA.pool(), MaxVersion: tls.VersionTLS11,
	}}}
	resp, err := c.Get(h.base + "/healthz")
	if err == nil {
		resp.Body.Close()
		t.Fatal("a TLS 1.1 client was served")
	}
}

func TestAccessLogNamesTheUserNotTheToken(t *testing.T) {
	h := startServer(t, webPods())
	h.get(h.client(nil), logsPath+"?tailLines=1", "token-admin")
	line := h.logLine(logsPath)
	for _, want := range []string{"method=GET", "user=admin", "status=200", "node=node-a", "pod=default/web"} {
		if !strings.Contains(line, want) {
			t.Errorf("access log %q lacks %q", line, want)
		}
	}
	if strings.Contains(h.logs.String(), "token-admin") {
		t.Errorf("the token was logged:\n%s", h.logs.String())
	}
}

func TestNewRefusesPlainHTTP(t *testing.T) {
	nobody := authenticator.RequestFunc(func(*http.Request) (*authenticator.Response, bool, error) { return nil, false, nil })
	_, err := New(Config{Address: "127.0.0.1:0"}, webPods(), nobody, authorizer.AuthorizerFunc((&fakeAuthz{}).Authorize), nil)
	if err == nil {
		t.Fatal("New without a serving certificate succeeded")
	}
}

// The agent's profiles are for who may proxy to every node.
func TestDebugProfilesNeedEveryNode(t *testing.T) {
	h := startServer(t, webPods())
	const path = "/debug/pprof/heap?debug=1"
	if status, body := h.get(h.client(nil), path, "token-admin"); status != http.StatusOK || !strings.Contains(body, "heap profile") {
		t.Errorf("GET %s as admin = %d %.80q, want 200 and the heap profile", path, status, body)
	}
	if attrs := h.authz.last(t); attrs.GetName() != "" || attrs.GetSubresource() != "proxy" {
		t.Errorf("profiles authorized as %+v, want nodes/proxy with no name (every node)", attrs)
	}
	if status, _ := h.get(h.client(nil), path, "token-node-b"); status != http.StatusForbidden {
		t.Errorf("GET %s by a one-node user = %d, want 403", path, status)
	}
	if status, _ := h.get(h.client(nil), path, ""); status != http.StatusUnauthorized {
		t.Errorf("GET %s anonymously = %d, want 401", path, status)
	}
}
