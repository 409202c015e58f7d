package nodeapi

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authorization/authorizer"
)

// A serving certificate whose files are replaced is served to the next
// connections without a restart; a pair that does not load leaves the last
// good one served.
func TestServingCertificateReloads(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, "serving-ca")
	first, second := ca.serving(t), ca.serving(t)
	certFile, keyFile := writeFiles(t, dir, "serving", first)

	noAuthn := authenticator.RequestFunc(func(*http.Request) (*authenticator.Response, bool, error) { return nil, false, nil })
	noAuthz := authorizer.AuthorizerFunc(func(context.Context, authorizer.Attributes) (authorizer.Decision, string, error) {
		return authorizer.DecisionDeny, "", nil
	})
	srv, err := New(Config{Address: "127.0.0.1:0", CertFile: certFile, KeyFile: keyFile}, &fakePods{}, noAuthn, noAuthz,
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})

	served := func() string {
		t.Helper()
		conn, err := tls.Dial("tcp", srv.Addr().String(), &tls.Config{RootCAs: ca.pool()})
		if err != nil {
			t.Fatalf("handshake: %v", err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	waitServed := func(want, what string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for served() != want {
			if time.Now().After(deadline) {
				t.Fatalf("%s: the server still serves serial %s", what, served())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if got := served(); got != first.Leaf.SerialNumber.String() {
		t.Fatalf("served serial %s, want the first certificate's %s", got, first.Leaf.SerialNumber)
	}

	writeFile(t, keyFile, []byte("not a key"))
	time.Sleep(500 * time.Millisecond) // time for the watch to see it
	if got := served(); got != first.Leaf.SerialNumber.String() {
		t.Errorf("after a broken key the server serves %s, want the last good certificate %s", got, first.Leaf.SerialNumber)
	}

	writeFiles(t, dir, "serving", second)
	waitServed(second.Leaf.SerialNumber.String(), "after the files were rotated")
}
