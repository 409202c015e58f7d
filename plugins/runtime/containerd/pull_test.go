package containerd

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/fedlet/fedlet/plugins/images/busybox"
	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// startRegistry serves an in-memory OCI registry on loopback holding the
// busybox image as fedlet/busybox:1; with a user, it asks for basic auth.
func startRegistry(t *testing.T, user, password string) (host, digest string) {
	t.Helper()
	handler := registry.New()
	if user != "" {
		inner := handler
		handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if u, p, ok := r.BasicAuth(); !ok || u != user || p != password {
				w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
			inner.ServeHTTP(w, r)
		})
	}
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	host = strings.TrimPrefix(srv.URL, "http://")

	img, err := busybox.Image()
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(host+"/fedlet/busybox:1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	opts := []remote.Option{}
	if user != "" {
		opts = append(opts, remote.WithAuth(&basicAuth{user, password}))
	}
	if err := remote.Write(ref, img, opts...); err != nil {
		t.Fatalf("push busybox: %v", err)
	}
	d, _ := img.Digest()
	return host, d.String()
}

func TestPullImage(t *testing.T) {
	h := newHarness(t)
	host, digest := startRegistry(t, "", "")
	image := host + "/fedlet/busybox:1"

	pull := func(req *runtimev1.PullImageRequest) (*runtimev1.PullImageResponse, error) {
		req.Node = testNode
		return h.rt.PullImage(h.ctx(), req)
	}
	if _, err := pull(&runtimev1.PullImageRequest{Image: image, Never: true}); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("pull with Never of an absent image: %v, want FailedPrecondition", err)
	}
	resp, err := pull(&runtimev1.PullImageRequest{Image: image})
	if err != nil {
		t.Fatal(err)
	}
	if want := host + "/fedlet/busybox@" + digest; resp.GetImageRef() != want {
		t.Errorf("image ref %q, want %q", resp.GetImageRef(), want)
	}
	if _, err := pull(&runtimev1.PullImageRequest{Image: image, Always: true}); err != nil {
		t.Errorf("pull with Always: %v", err)
	}
	if _, err := pull(&runtimev1.PullImageRequest{Image: image, Never: true}); err != nil {
		t.Errorf("pull with Never of a present image: %v", err)
	}

	_, err = pull(&runtimev1.PullImageRequest{Image: host + "/fedlet/nothere:1"})
	if status.Code(err) != codes.NotFound || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("pull of a missing image: %v, want NotFound", err)
	}
	_, err = pull(&runtimev1.PullImageRequest{Image: "127.0.0.1:1/fedlet/busybox:1"})
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "unreachable") {
		t.Errorf("pull from a registry that is down: %v, want Unavailable", err)
	}
	if _, err := pull(&runtimev1.PullImageRequest{Image: "Bad Image"}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("pull of a malformed name: %v, want InvalidArgument", err)
	}

	// The pulled image runs.
	pod := newPod("pulled")
	h.runSandbox(pod, false)
	if _, err := h.rt.StartContainer(h.ctx(), &runtimev1.StartContainerRequest{
		Node: testNode, Pod: pod,
		Container: &runtimev1.ContainerSpec{Name: "app", Image: image, Args: []string{"sh", "-c", "echo $GREETING"}, Env: []*runtimev1.KeyValue{{Key: "GREETING", Value: "from the registry"}}},
	}); err != nil {
		t.Fatal(err)
	}
	if st := h.waitExited(pod, "app", 0); st.GetExitCode() != 0 {
		t.Errorf("status %v", st)
	}
	if out, _ := h.logs(&runtimev1.ContainerLogsRequest{PodUid: pod.GetUid(), Container: "app", TailLines: -1}); out != "from the registry\n" {
		t.Errorf("logs = %q (args should replace the image's CMD)", out)
	}
}

func TestPullImageAuth(t *testing.T) {
	h := newHarness(t)
	host, _ := startRegistry(t, "alice", "s3cret")
	image := host + "/fedlet/busybox:1"
	_, err := h.rt.PullImage(h.ctx(), &runtimev1.PullImageRequest{Node: testNode, Image: image})
	if status.Code(err) != codes.PermissionDenied {
		t.Errorf("pull without credentials: %v, want PermissionDenied", err)
	}
	_, err = h.rt.PullImage(h.ctx(), &runtimev1.PullImageRequest{Node: testNode, Image: image, Auth: &runtimev1.RegistryAuth{Username: "alice", Password: "s3cret"}})
	if err != nil {
		t.Errorf("pull with credentials: %v", err)
	}
}

type basicAuth struct{ user, password string }

func (b *basicAuth) Authorization() (*authn.AuthConfig, error) {
	return &authn.AuthConfig{Username: b.user, Password: b.password}, nil
}
