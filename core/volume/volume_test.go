package volume

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/fedlet/fedlet/plugins/sdk/testenv"
)

func read(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// A new version replaces the old at once: new keys appear, removed keys go,
// and the directory of the old version is removed.
func TestWriteReplacesTheVolume(t *testing.T) {
	dir := t.TempDir()
	if err := Write(dir, Payload{"a": {Data: []byte("1"), Mode: 0o600}, "sub/b": {Data: []byte("2"), Mode: 0o644}}, nil); err != nil {
		t.Fatal(err)
	}
	if read(t, filepath.Join(dir, "a")) != "1" || read(t, filepath.Join(dir, "sub", "b")) != "2" {
		t.Fatal("first version not readable through its links")
	}
	if info, _ := os.Stat(filepath.Join(dir, "a")); info.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", info.Mode().Perm())
	}
	first, _ := os.Readlink(filepath.Join(dir, dataLink))
	if err := Write(dir, Payload{"a": {Data: []byte("1"), Mode: 0o600}, "sub/b": {Data: []byte("2"), Mode: 0o644}}, nil); err != nil {
		t.Fatal(err)
	}
	if same, _ := os.Readlink(filepath.Join(dir, dataLink)); same != first {
		t.Error("an unchanged payload was written again")
	}
	if err := Write(dir, Payload{"a": {Data: []byte("one"), Mode: 0o600}, "c": {Data: []byte("3"), Mode: 0o644}}, nil); err != nil {
		t.Fatal(err)
	}
	if read(t, filepath.Join(dir, "a")) != "one" || read(t, filepath.Join(dir, "c")) != "3" {
		t.Error("second version not readable")
	}
	if _, err := os.Lstat(filepath.Join(dir, "sub")); !os.IsNotExist(err) {
		t.Errorf("a key no longer in the payload is still there: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, first)); !os.IsNotExist(err) {
		t.Errorf("the old version's directory is still there: %v", err)
	}
}

func TestWriteRefusesPathsOutOfTheVolume(t *testing.T) {
	for _, path := range []string{"../x", "/etc/passwd", "a/../../x", ""} {
		if err := Write(t.TempDir(), Payload{path: {Data: []byte("x"), Mode: 0o644}}, nil); err == nil {
			t.Errorf("path %q accepted", path)
		}
	}
}

type fakeObjects struct {
	cms     map[string]*corev1.ConfigMap
	secrets map[string]*corev1.Secret
}

func (f fakeObjects) ConfigMap(_ context.Context, _ *corev1.Pod, name string) (*corev1.ConfigMap, error) {
	if cm, ok := f.cms[name]; ok {
		return cm, nil
	}
	return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "configmap"}, name)
}

func (f fakeObjects) Secret(_ context.Context, _ *corev1.Pod, name string) (*corev1.Secret, error) {
	if s, ok := f.secrets[name]; ok {
		return s, nil
	}
	return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "secret"}, name)
}

// The service-account volume the API server adds to pods: a bound token,
// the cluster CA and the namespace, the token due for a refresh at 80% of
// its life.
func TestBuildTheServiceAccountVolume(t *testing.T) {
	client := fake.NewClientset()
	var asked *authenticationv1.TokenRequest
	client.PrependReactor("create", "serviceaccounts", func(a k8stesting.Action) (bool, runtime.Object, error) {
		asked = a.(k8stesting.CreateAction).GetObject().(*authenticationv1.TokenRequest)
		resp := asked.DeepCopy()
		resp.Status = authenticationv1.TokenRequestStatus{Token: "a-bound-token", ExpirationTimestamp: metav1.NewTime(time.Now().Add(time.Hour))}
		return true, resp, nil
	})
	exp := int64(3600)
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web", UID: "uid-1"}, Spec: corev1.PodSpec{ServiceAccountName: "web-sa"}}
	v := corev1.Volume{Name: "kube-api-access-x", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
		{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token", ExpirationSeconds: &exp}},
		{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "kube-root-ca.crt"}, Items: []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}}}},
		{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{Path: "namespace", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}}}},
	}}}}
	objects := fakeObjects{cms: map[string]*corev1.ConfigMap{"kube-root-ca.crt": {Data: map[string]string{"ca.crt": "PEM"}}}}
	tokens := NewTokens(client)
	start := time.Now()
	p, refresh, err := Build(context.Background(), pod, v, objects, tokens, nil)
	if err != nil {
		t.Fatal(err)
	}
	if string(p["token"].Data) != "a-bound-token" || string(p["ca.crt"].Data) != "PEM" || string(p["namespace"].Data) != "shop" {
		t.Errorf("payload %v", p)
	}
	if ref := asked.Spec.BoundObjectRef; ref == nil || ref.Kind != "Pod" || ref.Name != "web" || ref.UID != "uid-1" || *asked.Spec.ExpirationSeconds != 3600 {
		t.Errorf("token request %+v, want bound to the pod, for an hour", asked.Spec)
	}
	if due := refresh.Sub(start); due < 47*time.Minute || due > 49*time.Minute {
		t.Errorf("refresh due after %s, want 80%% of an hour", due)
	}
	asked = nil
	if _, _, err := Build(context.Background(), pod, v, objects, tokens, nil); err != nil || asked != nil {
		t.Errorf("a fresh token was requested again (%v)", err)
	}

	delete(objects.cms, "kube-root-ca.crt")
	_, _, err = Build(context.Background(), pod, v, objects, tokens, nil)
	if me, ok := err.(*MissingError); !ok || !strings.Contains(me.Error(), `"kube-root-ca.crt" not found`) {
		t.Errorf("a missing ConfigMap: %v, want a MissingError naming it", err)
	}
}

func TestFromDataItemsAndOptional(t *testing.T) {
	mode := int32(0o400)
	data := map[string][]byte{"a": []byte("1"), "b": []byte("2")}
	p, err := FromData(data, []corev1.KeyToPath{{Key: "b", Path: "dir/b.txt", Mode: &mode}}, nil, false, "secret x")
	if err != nil || len(p) != 1 || string(p["dir/b.txt"].Data) != "2" || p["dir/b.txt"].Mode != 0o400 {
		t.Errorf("items: %v, %v", p, err)
	}
	if _, err := FromData(data, []corev1.KeyToPath{{Key: "z", Path: "z"}}, nil, false, "secret x"); err == nil {
		t.Error("a missing key of a required object was accepted")
	}
	if p, err := FromData(data, []corev1.KeyToPath{{Key: "z", Path: "z"}}, nil, true, "secret x"); err != nil || len(p) != 0 {
		t.Errorf("a missing key of an optional object: %v, %v", p, err)
	}
}

// With an fsGroup the files and an emptyDir belong to that group, the group
// may read the files, and what is made in the emptyDir inherits the group.
func TestFSGroupOwnsTheVolume(t *testing.T) {
	testenv.Need(t, "root, to give files to another group", os.Geteuid() == 0)
	gid := int64(4242)
	dir := t.TempDir()
	if err := Write(dir, Payload{"secret": {Data: []byte("x"), Mode: 0o400}}, &gid); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(filepath.Join(dir, "secret"))
	if err != nil {
		t.Fatal(err)
	}
	if st := info.Sys().(*syscall.Stat_t); st.Gid != uint32(gid) || info.Mode().Perm() != 0o440 {
		t.Errorf("secret file: gid %d, mode %v; want gid %d, mode 0440", st.Gid, info.Mode().Perm(), gid)
	}

	empty := filepath.Join(t.TempDir(), "shared")
	if err := MakeEmptyDir(empty, &gid); err != nil {
		t.Fatal(err)
	}
	info, err = os.Stat(empty)
	if err != nil {
		t.Fatal(err)
	}
	if st := info.Sys().(*syscall.Stat_t); st.Gid != uint32(gid) || info.Mode()&(os.ModePerm|os.ModeSetgid) != 0o777|os.ModeSetgid {
		t.Errorf("emptyDir: gid %d, mode %v; want gid %d, mode 2777", st.Gid, info.Mode(), gid)
	}
	if err := os.WriteFile(filepath.Join(empty, "made"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if info, err := os.Stat(filepath.Join(empty, "made")); err != nil || info.Sys().(*syscall.Stat_t).Gid != uint32(gid) {
		t.Errorf("a file made in the emptyDir does not inherit its group (%v)", err)
	}
}

// Without an fsGroup an emptyDir is writable by every user, whatever the umask.
func TestEmptyDirIsWorldWritable(t *testing.T) {
	empty := filepath.Join(t.TempDir(), "shared")
	if err := MakeEmptyDir(empty, nil); err != nil {
		t.Fatal(err)
	}
	if info, err := os.Stat(empty); err != nil || info.Mode().Perm() != 0o777 {
		t.Errorf("emptyDir mode %v (%v), want 0777", info.Mode(), err)
	}
}
