package pod

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

func dockerConfigJSON(name string, auths map[string]string) *corev1.Secret {
	var entries []string
	for host, userPass := range auths {
		entries = append(entries, fmt.Sprintf("%q: {\"auth\": %q}", host, base64.StdEncoding.EncodeToString([]byte(userPass))))
	}
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns"},
		Type:       corev1.SecretTypeDockerConfigJson,
		Data:       map[string][]byte{corev1.DockerConfigJsonKey: []byte(`{"auths": {` + strings.Join(entries, ",") + `}}`)},
	}
}

func TestCredentialsMatchTheImageRegistry(t *testing.T) {
	cfgJSON := dockerConfigJSON("json", map[string]string{
		"https://127.0.0.1:5000":      "scheme:pw",
		"other.example:5000":          "other:pw",
		"https://index.docker.io/v1/": "hub:pw",
		"registry.example/team":       "team:pw",
		"registry.example":            "any:pw",
	})
	cfg := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "cfg", Namespace: "ns"},
		Type:       corev1.SecretTypeDockercfg,
		Data:       map[string][]byte{corev1.DockerConfigKey: []byte(`{"127.0.0.1:5000": {"username": "plain", "password": "pw"}}`)},
	}
	cases := map[string][]string{
		"127.0.0.1:5000/busybox:latest":                          {"scheme", "plain"},
		"busybox":                                                {"hub"},
		"docker.io/library/busybox":                              {"hub"},
		"registry.example/team/app:1":                            {"team", "any"},
		"registry.example/teammate/app:1":                        {"any"},
		"127.0.0.1:5001/busybox":                                 nil,
		"quay.io/busybox":                                        nil,
		"other.example:5000/x@sha256:" + strings.Repeat("a", 64): {"other"},
	}
	for image, want := range cases {
		creds, errs := credentialsFor(image, []*corev1.Secret{cfgJSON, cfg})
		if len(errs) > 0 {
			t.Errorf("%s: %v", image, errs)
		}
		var users []string
		for _, c := range creds {
			users = append(users, c.auth.Username)
			if c.auth.Password != "pw" {
				t.Errorf("%s: password of %s = %q", image, c.auth.Username, c.auth.Password)
			}
		}
		if strings.Join(users, ",") != strings.Join(want, ",") {
			t.Errorf("%s: credentials of %v, want %v", image, users, want)
		}
	}
}

func TestUnusableSecretsAreNamedNotQuoted(t *testing.T) {
	broken := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "broken", Namespace: "ns"},
		Type:       corev1.SecretTypeDockerConfigJson,
		Data:       map[string][]byte{corev1.DockerConfigJsonKey: []byte(`{"auths": {"h": {"password": "hunter2"`)},
	}
	opaque := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "opaque", Namespace: "ns"}, Type: corev1.SecretTypeOpaque}
	badAuth := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "bad-auth", Namespace: "ns"},
		Type:       corev1.SecretTypeDockerConfigJson,
		Data:       map[string][]byte{corev1.DockerConfigJsonKey: []byte(`{"auths": {"h.example": {"auth": "hunter2!"}}}`)},
	}
	creds, errs := credentialsFor("h.example/app", []*corev1.Secret{broken, opaque, badAuth})
	if len(creds) != 0 || len(errs) != 3 {
		t.Fatalf("creds %v, errors %v", creds, errs)
	}
	for i, name := range []string{"ns/broken", "ns/opaque", "ns/bad-auth"} {
		msg := errs[i].Error()
		if !strings.Contains(msg, name) || strings.Contains(msg, "hunter2") {
			t.Errorf("error %q should name %s and not quote the secret", msg, name)
		}
	}
}

// pullRuntime accepts only one password.
type pullRuntime struct {
	runtimev1.RuntimeClient
	accept string
	tried  []string
}

func (r *pullRuntime) PullImage(_ context.Context, req *runtimev1.PullImageRequest, _ ...grpc.CallOption) (*runtimev1.PullImageResponse, error) {
	r.tried = append(r.tried, req.GetAuth().GetPassword())
	if req.GetAuth().GetPassword() != r.accept {
		return nil, status.Error(codes.PermissionDenied, "registry refused access")
	}
	return &runtimev1.PullImageResponse{ImageRef: "ref"}, nil
}

func TestPullTriesEachMatchingSecret(t *testing.T) {
	first := dockerConfigJSON("first", map[string]string{"127.0.0.1:5000": "u:wrong"})
	second := dockerConfigJSON("second", map[string]string{"127.0.0.1:5000": "u:right"})
	rt := &pullRuntime{accept: "right"}
	c := &imagePuller{
		client:  fake.NewSimpleClientset(first, second),
		runtime: rt,
		events:  record.NewFakeRecorder(10),
		log:     slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns"},
		Spec:       corev1.PodSpec{ImagePullSecrets: []corev1.LocalObjectReference{{Name: "missing"}, {Name: "first"}, {Name: "second"}}},
	}
	resp, err := c.pullWithSecrets(context.Background(), pod, &runtimev1.PullImageRequest{Image: "127.0.0.1:5000/app"})
	if err != nil || resp.GetImageRef() != "ref" {
		t.Fatalf("pull: %v, %v", resp, err)
	}
	if strings.Join(rt.tried, ",") != "wrong,right" {
		t.Errorf("tried %v, want wrong then right", rt.tried)
	}

	rt.tried, rt.accept = nil, "none of them"
	_, err = c.pullWithSecrets(context.Background(), pod, &runtimev1.PullImageRequest{Image: "127.0.0.1:5000/app"})
	if status.Code(err) != codes.PermissionDenied || len(rt.tried) != 2 {
		t.Errorf("all refused: %v after %v", err, rt.tried)
	}

	rt.tried = nil
	_, _ = c.pullWithSecrets(context.Background(), pod, &runtimev1.PullImageRequest{Image: "elsewhere.example/app"})
	if len(rt.tried) != 1 || rt.tried[0] != "" {
		t.Errorf("no matching secret: tried %q, want one anonymous pull", rt.tried)
	}
}
