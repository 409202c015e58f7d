package nodeapi

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// reviewServer answers TokenReviews and SubjectAccessReviews over HTTP as the API server does,
// from fixed tables: it stands in for kube-apiserver (the real one is the integration tests').
type reviewServer struct {
	tokens map[string]string   // token → user
	grants map[string][]string // user → nodes whose nodes/proxy they may get

	mu   sync.Mutex
	sars []authorizationv1.SubjectAccessReviewSpec
}

func (s *reviewServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/apis/authentication.k8s.io/v1/tokenreviews":
		var review authenticationv1.TokenReview
		if err := json.NewDecoder(r.Body).Decode(&review); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if name, ok := s.tokens[review.Spec.Token]; ok {
			review.Status = authenticationv1.TokenReviewStatus{Authenticated: true, User: authenticationv1.UserInfo{Username: name, Groups: []string{"devs"}}}
		}
		writeJSON(w, &review)
	case "/apis/authorization.k8s.io/v1/subjectaccessreviews":
		var review authorizationv1.SubjectAccessReview
		if err := json.NewDecoder(r.Body).Decode(&review); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		s.sars = append(s.sars, review.Spec)
		s.mu.Unlock()
		ra := review.Spec.ResourceAttributes
		if ra != nil && ra.Verb == "get" && ra.Resource == "nodes" && ra.Subresource == "proxy" &&
			slices.Contains(s.grants[review.Spec.User], ra.Name) {
			review.Status = authorizationv1.SubjectAccessReviewStatus{Allowed: true}
		} else {
			review.Status = authorizationv1.SubjectAccessReviewStatus{Reason: "no RoleBinding for " + review.Spec.User}
		}
		writeJSON(w, &review)
	default:
		http.NotFound(w, r)
	}
}

func (s *reviewServer) lastSAR(t *testing.T) authorizationv1.SubjectAccessReviewSpec {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.sars) == 0 {
		t.Fatal("no SubjectAccessReview was sent")
	}
	return s.sars[len(s.sars)-1]
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func newReviewClient(t *testing.T, rs *reviewServer) kubernetes.Interface {
	t.Helper()
	api := httptest.NewServer(rs)
	t.Cleanup(api.Close)
	client, err := kubernetes.NewForConfig(&rest.Config{Host: api.URL, ContentConfig: rest.ContentConfig{ContentType: "application/json"}})
	if err != nil {
		t.Fatal(err)
	}
	return client
}

func TestDelegatedAuthOverTheNodeAPI(t *testing.T) {
	rs := &reviewServer{
		tokens: map[string]string{"alice-token": "alice", "bob-token": "bob"},
		grants: map[string][]string{"alice": {"node-a"}, "kube-apiserver-kubelet-client": {"node-a"}},
	}
	client := newReviewClient(t, rs)
	h := startServerWith(t, webPods(), func(_ *harness, caFile string) (authenticator.Request, authorizer.Authorizer) {
		authn, authz, err := DelegatedAuth(client, caFile)
		if err != nil {
			t.Fatalf("DelegatedAuth: %v", err)
		}
		return authn, authz
	})

	if status, body := h.get(h.client(nil), logsPath, "alice-token"); status != http.StatusOK || body != "line 1\nline 2\n" {
		t.Errorf("GET as alice (token) = %d %q, want 200 with the log", status, body)
	}
	sar := rs.lastSAR(t)
	if ra := sar.ResourceAttributes; sar.User != "alice" || !slices.Contains(sar.Groups, user.AllAuthenticated) || ra == nil ||
		ra.Verb != "get" || ra.Resource != "nodes" || ra.Subresource != "proxy" || ra.Name != "node-a" || ra.Version != "v1" {
		t.Errorf("SubjectAccessReview = %+v (resource %+v), want alice get nodes/proxy node-a", sar, sar.ResourceAttributes)
	}

	status, body := h.get(h.client(nil), logsPath, "bob-token")
	if status != http.StatusForbidden || !strings.Contains(body, "no RoleBinding for bob") {
		t.Errorf("GET as bob = %d %q, want 403 with the API server's reason", status, body)
	}
	if status, _ := h.get(h.client(nil), logsPath, "stolen-token"); status != http.StatusUnauthorized {
		t.Errorf("GET with a token the API server rejects = %d, want 401", status)
	}
	if status, _ := h.get(h.client(nil), logsPath, ""); status != http.StatusUnauthorized {
		t.Errorf("anonymous GET = %d, want 401", status)
	}

	cert := h.clientCA.client(t, "kube-apiserver-kubelet-client", "system:masters")
	if status, body := h.get(h.client(&cert), logsPath, ""); status != http.StatusOK {
		t.Errorf("GET with the kubelet client certificate = %d %q, want 200", status, body)
	}
	if sar := rs.lastSAR(t); sar.User != "kube-apiserver-kubelet-client" || !slices.Contains(sar.Groups, "system:masters") {
		t.Errorf("SubjectAccessReview for the certificate = user %q groups %v", sar.User, sar.Groups)
	}
	rogue := newTestCA(t, "rogue-ca").client(t, "kube-apiserver-kubelet-client")
	if status, _ := h.get(h.client(&rogue), logsPath, ""); status != http.StatusUnauthorized {
		t.Errorf("GET with a certificate from another CA = %d, want 401", status)
	}
}

func TestDelegatedAuthWithoutClientCA(t *testing.T) {
	client := newReviewClient(t, &reviewServer{})
	authn, _, err := DelegatedAuth(client, "")
	if err != nil {
		t.Fatalf("DelegatedAuth without a client CA: %v", err)
	}
	// A certificate is then no credential at all.
	ca := newTestCA(t, "client-ca")
	cert := ca.client(t, "someone")
	req := httptest.NewRequest(http.MethodGet, "https://node/containerLogs/a/b/c", nil)
	req.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{cert.Leaf}}
	if _, ok, _ := authn.AuthenticateRequest(req.WithContext(context.Background())); ok {
		t.Error("a client certificate authenticated with no client CA configured")
	}
}

func TestDelegatedAuthNeedsAClient(t *testing.T) {
	if _, _, err := DelegatedAuth(nil, ""); err == nil {
		t.Fatal("DelegatedAuth(nil) succeeded")
	}
}
