package members

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

const kubeconfig = `apiVersion: v1
kind: Config
clusters: [{name: m, cluster: {server: "https://127.0.0.1:6443"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: c, context: {cluster: m, user: u}}]
current-context: c
`

func TestFromSecretRefusesWhatIsNoMember(t *testing.T) {
	good := Member{Name: "edge", Kubeconfig: []byte(kubeconfig), Namespace: "from-hub"}
	if m, err := FromSecret(good.Secret("fedlet-system")); err != nil || m.Name != "edge" || m.Namespace != "from-hub" {
		t.Fatalf("FromSecret of a member's Secret = %+v, %v", m, err)
	}
	for _, tc := range []struct {
		name string
		edit func(*corev1.Secret)
		want string
	}{
		{"type", func(s *corev1.Secret) { s.Type = corev1.SecretTypeOpaque }, `of type "Opaque", not a member`},
		{"unknown key", func(s *corev1.Secret) { s.Data["token"] = []byte("x") }, `unknown key "token"`},
		{"no kubeconfig", func(s *corev1.Secret) { delete(s.Data, KeyKubeconfig) }, "the kubeconfig is empty"},
		{"broken kubeconfig", func(s *corev1.Secret) { s.Data[KeyKubeconfig] = []byte("clusters: 3") }, "the kubeconfig cannot be used"},
		{"bad namespace", func(s *corev1.Secret) { s.Data[KeyNamespace] = []byte("From_Hub") }, `namespace "From_Hub"`},
		{"bad name", func(s *corev1.Secret) { s.Name = "Edge.1" }, `member name "Edge.1"`},
	} {
		s := good.Secret("fedlet-system")
		tc.edit(s)
		if _, err := FromSecret(s); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: FromSecret = %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
}

// Watch reports the valid members at the start and after each change.
func TestWatchFollowsTheSecrets(t *testing.T) {
	client := fake.NewClientset(Member{Name: "a", Kubeconfig: []byte(kubeconfig)}.Secret("fedlet-system"))
	// The fake API server does not replay what happened between the list
	// and the watch: changes are made once the watch is open.
	watching := make(chan struct{})
	client.PrependWatchReactor("secrets", func(k8stesting.Action) (bool, watch.Interface, error) {
		close(watching)
		return false, nil, nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	sets := make(chan map[string]Member, 10)
	done := make(chan struct{})
	go func() {
		defer close(done)
		Watch(ctx, client, "fedlet-system", func(s map[string]Member) { sets <- s }, slog.New(slog.DiscardHandler))
	}()
	defer func() { cancel(); <-done }()
	next := func() map[string]Member {
		t.Helper()
		select {
		case s := <-sets:
			return s
		case <-time.After(20 * time.Second):
			t.Fatal("no set of members reported")
			return nil
		}
	}
	if s := next(); len(s) != 1 || s["a"].Name != "a" {
		t.Fatalf("first set %v, want member a", s)
	}
	<-watching
	b := Member{Name: "b", Kubeconfig: []byte(kubeconfig)}.Secret("fedlet-system")
	if _, err := client.CoreV1().Secrets("fedlet-system").Create(ctx, b, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if s := next(); len(s) != 2 {
		t.Fatalf("after adding b: %v, want a and b", s)
	}
	if err := client.CoreV1().Secrets("fedlet-system").Delete(ctx, "a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if s := next(); len(s) != 1 || s["b"].Name != "b" {
		t.Fatalf("after removing a: %v, want b", s)
	}
}
