package federation

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fedlet/fedlet/integration/cluster"
)

// TestVirtualNodeStandsForTheMember: the hub has a Ready node named after
// the member, labelled with its name and tainted so that only the pods
// that ask for it go there.
func TestVirtualNodeStandsForTheMember(t *testing.T) {
	node, err := hub.Client().CoreV1().Nodes().Get(context.Background(), member.Name(), metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the hub has no node %s: %v", member.Name(), err)
	}
	ready := false
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady {
			ready = c.Status == corev1.ConditionTrue
		}
	}
	if !ready {
		t.Errorf("node %s is not Ready: %+v", node.Name, node.Status.Conditions)
	}
	if got := node.Labels[cluster.MemberLabel]; got != member.Name() {
		t.Errorf("node %s: label %s=%q, want %q", node.Name, cluster.MemberLabel, got, member.Name())
	}
	want := corev1.Taint{Key: cluster.VirtualNodeTaintKey, Value: cluster.VirtualNodeTaintValue, Effect: corev1.TaintEffectNoSchedule}
	found := false
	for _, taint := range node.Spec.Taints {
		found = found || (taint.Key == want.Key && taint.Value == want.Value && taint.Effect == want.Effect)
	}
	if !found {
		t.Errorf("node %s: taints %+v lack %s=%s:%s", node.Name, node.Spec.Taints, want.Key, want.Value, want.Effect)
	}
}

// TestPodWithoutTolerationStaysOffTheMember: a pod that selects the
// member's node but does not tolerate its taint is not scheduled, and
// nothing reaches the member.
func TestPodWithoutTolerationStaysOffTheMember(t *testing.T) {
	ns := namespace(t)
	ctx := context.Background()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "intolerant"},
		Spec: corev1.PodSpec{
			NodeSelector: map[string]string{cluster.MemberLabel: member.Name()},
			Containers:   []corev1.Container{{Name: "main", Image: hub.Image(), Command: []string{"true"}}},
		},
	}
	if _, err := hub.Client().CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, time.Minute, "the pod reported Unschedulable", func(ctx context.Context) (bool, string) {
		p, err := hub.Client().CoreV1().Pods(ns).Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		if p.Spec.NodeName != "" {
			t.Fatalf("the pod was bound to %s", p.Spec.NodeName)
		}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
				return true, ""
			}
		}
		return false, describePod(p)
	})
	pods, err := memberPods(ctx, ns)
	if err != nil {
		t.Fatal(err)
	}
	if len(pods) != 0 {
		t.Errorf("the member has pods of namespace %s: %s", ns, describePods(pods))
	}
}
