package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"golang.org/x/crypto/bcrypt"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"

	"github.com/fedlet/fedlet/plugins/images/busybox"
)

// markedImage is the busybox image with one more layer holding /marker.
func markedImage(t *testing.T, marker string) v1.Image {
	t.Helper()
	base, err := busybox.Image()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: "marker", Mode: 0o644, Size: int64(len(marker)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	tw.Write([]byte(marker))
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(base, layer)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// push writes img as ref and returns its digest.
func push(t *testing.T, ref string, img v1.Image, opts ...remote.Option) string {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img, append(opts, remote.WithContext(context.Background()))...); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

func TestImagePullPolicies(t *testing.T) {
	ns := namespace(t)
	host, _, _ := strings.Cut(env.Image(), "/")
	repo := host + "/e2e-policy-" + strings.ToLower(rand.String(6))
	image := repo + ":v1"
	one := push(t, image, markedImage(t, "one"))

	run := func(name string, policy corev1.PullPolicy, image string) *corev1.Pod {
		t.Helper()
		p := busyboxPod(name, "cat /marker", corev1.RestartPolicyNever)
		p.Spec.Containers[0].Image = image
		p.Spec.Containers[0].ImagePullPolicy = policy
		createPod(t, ns, p)
		return p
	}
	// ran waits for the pod to succeed and returns its output and image ID.
	ran := func(name string) (string, string) {
		t.Helper()
		p := waitPod(t, ns, name, time.Minute, "Succeeded", phaseIs(corev1.PodSucceeded))
		out, err := kubectl(t, "-n", ns, "logs", name)
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(out), p.Status.ContainerStatuses[0].ImageID
	}

	run("first", corev1.PullIfNotPresent, image)
	if out, id := ran("first"); out != "one" || id != repo+"@"+one {
		t.Errorf("first pull: printed %q from %s, want one from %s@%s", out, id, repo, one)
	}

	// The tag moves on in the registry.
	two := push(t, image, markedImage(t, "two"))
	if two == one {
		t.Fatal("both images have the same digest")
	}
	run("if-not-present", corev1.PullIfNotPresent, image)
	if out, id := ran("if-not-present"); out != "one" || id != repo+"@"+one {
		t.Errorf("IfNotPresent after the tag moved: printed %q from %s, want the node's copy (one, %s)", out, id, one)
	}
	run("always", corev1.PullAlways, image)
	if out, id := ran("always"); out != "two" || id != repo+"@"+two {
		t.Errorf("Always after the tag moved: printed %q from %s, want two from %s@%s", out, id, repo, two)
	}
	run("never-present", corev1.PullNever, image)
	if out, _ := ran("never-present"); out != "two" {
		t.Errorf("Never with the image present: printed %q, want two (the node's newest copy)", out)
	}

	run("never-absent", corev1.PullNever, repo+":absent")
	p := waitPod(t, ns, "never-absent", time.Minute, "in ErrImageNeverPull", func(p *corev1.Pod) bool {
		return waitingReason(p) == "ErrImageNeverPull"
	})
	if msg := p.Status.ContainerStatuses[0].State.Waiting.Message; !strings.Contains(msg, "not present") {
		t.Errorf("Never with the image absent: message %q does not say it is not present", msg)
	}
}

// authRegistry runs a second registry that requires user alice with
// password, on a free loopback port, until the test ends.
func authRegistry(t *testing.T, password string) string {
	t.Helper()
	dir := t.TempDir()
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "htpasswd"), []byte("alice:"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", closedPort(t))
	config := fmt.Sprintf(`version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: %q
auth:
  htpasswd:
    realm: fedlet-e2e
    path: %q
http:
  addr: %s
`, filepath.Join(dir, "storage"), filepath.Join(dir, "htpasswd"), addr)
	if err := os.WriteFile(filepath.Join(dir, "config.yaml"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(filepath.Dir(env.Kubectl()), "registry"), "serve", filepath.Join(dir, "config.yaml"))
	cmd.Env = append(os.Environ(), "OTEL_TRACES_EXPORTER=none")
	stop := startProcess(t, "auth registry", cmd)
	t.Cleanup(func() { stop(20 * time.Second) })
	waitFor(t, 30*time.Second, "the auth registry serving", func() (bool, string) {
		resp, err := http.Get("http://" + addr + "/v2/")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusUnauthorized, resp.Status
	})
	return addr
}

func TestImagePullSecrets(t *testing.T) {
	ns := namespace(t)
	password := "e2e-" + rand.String(12)
	registry := authRegistry(t, password)
	image := registry + "/private/busybox:v1"
	push(t, image, markedImage(t, "private"), remote.WithAuth(&authn.Basic{Username: "alice", Password: password}))

	without := busyboxPod("no-secret", "cat /marker", corev1.RestartPolicyNever)
	without.Spec.Containers[0].Image = image
	createPod(t, ns, without)
	p := waitPod(t, ns, "no-secret", time.Minute, "failing to pull", func(p *corev1.Pod) bool {
		r := waitingReason(p)
		return r == "ErrImagePull" || r == "ImagePullBackOff"
	})
	if msg := p.Status.ContainerStatuses[0].State.Waiting.Message; !strings.Contains(msg, "refused access") {
		t.Errorf("pull without credentials: message %q does not say the registry refused access", msg)
	}

	// A wrong password first (keyed with a scheme), then the right one:
	// the first that the registry accepts is used.
	secret := func(name, key, password string) {
		cfg, _ := json.Marshal(map[string]any{"auths": map[string]any{key: map[string]string{"username": "alice", "password": password}}})
		_, err := env.Client().CoreV1().Secrets(ns).Create(context.Background(), &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Type:       corev1.SecretTypeDockerConfigJson,
			Data:       map[string][]byte{corev1.DockerConfigJsonKey: cfg},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
	}
	secret("wrong", "https://"+registry, "not-"+password)
	secret("right", registry, password)
	with := busyboxPod("with-secret", "cat /marker", corev1.RestartPolicyNever)
	with.Spec.Containers[0].Image = image
	with.Spec.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "wrong"}, {Name: "right"}}
	createPod(t, ns, with)
	waitPod(t, ns, "with-secret", time.Minute, "Succeeded", phaseIs(corev1.PodSucceeded))
	if out, err := kubectl(t, "-n", ns, "logs", "with-secret"); err != nil || strings.TrimSpace(out) != "private" {
		t.Errorf("logs = %q, %v", out, err)
	}

	agentLog, err := os.ReadFile(filepath.Join(env.Paths().Logs, "agent.log"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(agentLog, []byte(password)) {
		t.Error("the agent's log holds the registry password")
	}
}
