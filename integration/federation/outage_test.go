package federation

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fedlet/fedlet/core/podproxy"
)

// reasonUnreachable is the kubernetes plugin's reason for a member whose
// API server does not answer.
const reasonUnreachable = "MemberUnreachable"

// TestMemberAPIServerOutage stops the member's API server while pods of
// the hub run there, then starts it again. Meanwhile the virtual node is
// Ready Unknown with the plugin's reason and the node lifecycle controller
// taints it unreachable; the running pod keeps its last status, not ready,
// with a condition saying why. A pod deleted on the hub during the outage
// goes from the member once it is back, one created during the outage runs
// there once; the running pod is neither deleted nor started again.
func TestMemberAPIServerOutage(t *testing.T) {
	ns := namespace(t)
	ctx := context.Background()
	for _, name := range []string{"stays", "goes"} {
		p := sleeper(name)
		toMember(&p.Spec)
		if _, err := hub.Client().CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	stays := waitRunning(t, ns, "stays", member.Name())
	waitRunning(t, ns, "goes", member.Name())
	before := memberPodOf(t, ns, stays.UID)

	if err := member.KillAPIServer(); err != nil {
		t.Fatal(err)
	}
	restarted := false
	t.Cleanup(func() {
		if !restarted {
			// The tests that follow need the member.
			if err := member.StartAPIServer(context.Background()); err != nil {
				t.Errorf("start the member's API server again: %v", err)
			}
		}
	})

	poll(t, 2*time.Minute, "the virtual node Ready Unknown, tainted unreachable", func(ctx context.Context) (bool, string) {
		n, err := hub.Client().CoreV1().Nodes().Get(ctx, member.Name(), metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		ready := nodeCondition(n, corev1.NodeReady)
		return ready != nil && ready.Status == corev1.ConditionUnknown && ready.Reason == reasonUnreachable &&
				hasTaint(n, corev1.TaintNodeUnreachable),
			fmt.Sprintf("Ready %+v, taints %v", ready, n.Spec.Taints)
	})
	poll(t, time.Minute, "the running pod marked unreachable, keeping its last status", func(ctx context.Context) (bool, string) {
		p, err := hub.Client().CoreV1().Pods(ns).Get(ctx, "stays", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		mark := podCondition(p, podproxy.ConditionBackendReachable)
		ready := podCondition(p, corev1.PodReady)
		return mark != nil && mark.Status == corev1.ConditionFalse && mark.Reason == reasonUnreachable &&
				ready != nil && ready.Status == corev1.ConditionFalse &&
				p.Status.Phase == corev1.PodRunning && p.Status.PodIP == stays.Status.PodIP,
			describePod(p) + fmt.Sprintf(" conditions %+v", p.Status.Conditions)
	})

	// What the hub asks meanwhile waits for the member.
	if err := hub.Client().CoreV1().Pods(ns).Delete(ctx, "goes", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	comes := sleeper("comes")
	toMember(&comes.Spec)
	// Bound at once: the scheduler keeps new pods off an unreachable node.
	comes.Spec.NodeName = member.Name()
	if _, err := hub.Client().CoreV1().Pods(ns).Create(ctx, comes, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	restarted = true
	if err := member.StartAPIServer(ctx); err != nil {
		t.Fatalf("start the member's API server again: %v", err)
	}
	poll(t, 2*time.Minute, "the virtual node Ready again, untainted", func(ctx context.Context) (bool, string) {
		n, err := hub.Client().CoreV1().Nodes().Get(ctx, member.Name(), metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		ready := nodeCondition(n, corev1.NodeReady)
		return ready != nil && ready.Status == corev1.ConditionTrue && !hasTaint(n, corev1.TaintNodeUnreachable),
			fmt.Sprintf("Ready %+v, taints %v", ready, n.Spec.Taints)
	})
	poll(t, 2*time.Minute, "the running pod's mark gone, ready again", func(ctx context.Context) (bool, string) {
		p, err := hub.Client().CoreV1().Pods(ns).Get(ctx, "stays", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		ready := podCondition(p, corev1.PodReady)
		return podCondition(p, podproxy.ConditionBackendReachable) == nil && ready != nil && ready.Status == corev1.ConditionTrue,
			describePod(p) + fmt.Sprintf(" conditions %+v", p.Status.Conditions)
	})
	waitRunning(t, ns, "comes", member.Name())
	poll(t, 2*time.Minute, "the pod deleted during the outage gone from both clusters", func(ctx context.Context) (bool, string) {
		_, err := hub.Client().CoreV1().Pods(ns).Get(ctx, "goes", metav1.GetOptions{})
		if !apierrors.IsNotFound(err) {
			return false, fmt.Sprintf("still on the hub (%v)", err)
		}
		pods, err := memberPods(ctx, ns)
		if err != nil {
			return false, err.Error()
		}
		for _, p := range pods {
			if p.Labels[originName] == "goes" {
				return false, "still in the member: " + describePod(&p)
			}
		}
		return true, ""
	})

	pods, err := memberPods(ctx, ns)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, p := range pods {
		seen[p.Labels[originName]]++
	}
	if len(pods) != 2 || seen["stays"] != 1 || seen["comes"] != 1 {
		t.Errorf("the member runs %s; want stays and comes, once each", describePods(pods))
	}
	after := memberPodOf(t, ns, stays.UID)
	if after.UID != before.UID || restarts(after) != restarts(before) || after.Status.Phase != corev1.PodRunning {
		t.Errorf("the running pod changed with the outage: was %s (uid %s), now %s (uid %s)", describePod(before), before.UID, describePod(after), after.UID)
	}
}

// memberPodOf is the member's pod of the hub pod with that UID.
func memberPodOf(t *testing.T, ns string, uid any) *corev1.Pod {
	t.Helper()
	pods, err := memberPods(context.Background(), ns)
	if err != nil {
		t.Fatal(err)
	}
	for i := range pods {
		if pods[i].Labels[originUID] == fmt.Sprint(uid) {
			return &pods[i]
		}
	}
	t.Fatalf("no member pod of hub pod %v: %s", uid, describePods(pods))
	return nil
}

func nodeCondition(n *corev1.Node, t corev1.NodeConditionType) *corev1.NodeCondition {
	for i := range n.Status.Conditions {
		if n.Status.Conditions[i].Type == t {
			return &n.Status.Conditions[i]
		}
	}
	return nil
}

func podCondition(p *corev1.Pod, t corev1.PodConditionType) *corev1.PodCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == t {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}

func hasTaint(n *corev1.Node, key string) bool {
	for _, t := range n.Spec.Taints {
		if t.Key == key {
			return true
		}
	}
	return false
}
