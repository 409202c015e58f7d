package federation

import (
	"context"
	"fmt"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// TestMemberPodHasItsHubIdentity: a pod federated into the member finds,
// where pods find their credentials, a token of its hub service account
// bound to the hub pod (the hub's TokenReview says so), the hub's CA and
// its hub namespace.
func TestMemberPodHasItsHubIdentity(t *testing.T) {
	ns := namespace(t)
	ctx := context.Background()
	p := sleeper("identified")
	toMember(&p.Spec)
	created, err := hub.Client().CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitRunning(t, ns, p.Name, member.Name())

	const dir = "/var/run/secrets/kubernetes.io/serviceaccount/"
	cat := func(file string) string {
		t.Helper()
		out, err := kubectl(t, "-n", ns, "exec", p.Name, "--", "cat", dir+file)
		if err != nil {
			t.Fatalf("cat %s in the member pod: %v", file, err)
		}
		return out
	}
	if got := cat("namespace"); got != ns {
		t.Errorf("namespace file %q, want the hub namespace %q", got, ns)
	}
	root, err := hub.Client().CoreV1().ConfigMaps(ns).Get(ctx, "kube-root-ca.crt", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if cat("ca.crt") != root.Data["ca.crt"] {
		t.Error("ca.crt is not the hub's CA")
	}
	review, err := hub.Client().AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: cat("token")}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	u := review.Status.User
	// The pod's in-cluster clients are pointed at the hub, where its token
	// is good: the address in its environment reaches the hub's API server
	// from the pod, and there the token says who the pod is. (busybox's
	// TLS cannot talk to the API server; the test's client does, with the
	// pod's token, at the pod's address.)
	addr, err := kubectl(t, "-n", ns, "exec", p.Name, "--", "sh", "-c",
		`timeout 5 nc $KUBERNETES_SERVICE_HOST $KUBERNETES_SERVICE_PORT </dev/null && echo -n $KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT`)
	if err != nil {
		t.Fatalf("the member pod reaching the API server of its environment: %v", err)
	}
	asPod, err := kubernetes.NewForConfig(&rest.Config{
		Host: "https://" + addr, BearerToken: cat("token"),
		TLSClientConfig: rest.TLSClientConfig{CAData: []byte(root.Data["ca.crt"])},
	})
	if err != nil {
		t.Fatal(err)
	}
	self, err := asPod.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil || self.Status.UserInfo.Username != "system:serviceaccount:"+ns+":default" {
		t.Errorf("the hub at %s, asked with the pod's token who it is: %+v, %v", addr, self, err)
	}
	if !review.Status.Authenticated || u.Username != "system:serviceaccount:"+ns+":default" ||
		fmt.Sprint(u.Extra["authentication.kubernetes.io/pod-uid"]) != "["+string(created.UID)+"]" {
		t.Errorf("the member pod's token authenticates on the hub as %+v (%v, %s), want the hub pod's service account, bound to it",
			u, review.Status.Authenticated, review.Status.Error)
	}
}
