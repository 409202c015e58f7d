package federation

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"

	"github.com/fedlet/fedlet/integration/cluster"
)

// The origin labels the kubernetes runtime plugin puts on every object it
// makes in a member.
const (
	originCluster   = "fedlet.io/origin-cluster"
	originNamespace = "fedlet.io/origin-namespace"
	originName      = "fedlet.io/origin-name"
	originUID       = "fedlet.io/origin-uid"
	originNode      = "fedlet.io/node"
)

// namespace makes a namespace on the hub for one test, and deletes it
// afterwards there and in the member (where the plugin may have made it).
func namespace(t *testing.T) string {
	t.Helper()
	name := "fed-" + strings.ToLower(rand.String(6))
	ctx := context.Background()
	_, err := hub.Client().CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	// Pods need the default service account to exist before they are admitted.
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := hub.Client().CoreV1().ServiceAccounts(name).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	})
	if err != nil {
		t.Fatalf("namespace %s has no default service account: %v", name, err)
	}
	t.Cleanup(func() {
		for _, c := range []*cluster.Cluster{hub, member} {
			err := c.Client().CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{})
			if err != nil && !apierrors.IsNotFound(err) {
				t.Logf("delete namespace %s in %s: %v", name, c.Name(), err)
			}
		}
	})
	return name
}

// toMember is what a pod spec needs to go to the member's virtual node:
// its label, and a toleration of the virtual nodes' taint.
func toMember(spec *corev1.PodSpec) {
	spec.NodeSelector = map[string]string{cluster.MemberLabel: member.Name()}
	spec.Tolerations = append(spec.Tolerations, corev1.Toleration{
		Key:      cluster.VirtualNodeTaintKey,
		Operator: corev1.TolerationOpEqual,
		Value:    cluster.VirtualNodeTaintValue,
		Effect:   corev1.TaintEffectNoSchedule,
	})
}

// originSelector selects the objects the plugin made in the member for the
// hub's namespace ns.
func originSelector(ns string) string {
	return labels.SelectorFromSet(labels.Set{originCluster: hub.Name(), originNamespace: ns}).String()
}

// memberPods lists the pods the plugin made in the member for namespace ns
// of the hub, in whatever member namespace they are.
func memberPods(ctx context.Context, ns string) ([]corev1.Pod, error) {
	list, err := member.Client().CoreV1().Pods("").List(ctx, metav1.ListOptions{LabelSelector: originSelector(ns)})
	if err != nil {
		return nil, err
	}
	return list.Items, nil
}

// poll calls cond every 200 ms until it says done, and fails the test with
// its last word when it does not within timeout.
func poll(t *testing.T, timeout time.Duration, what string, cond func(ctx context.Context) (done bool, last string)) {
	t.Helper()
	var last string
	err := wait.PollUntilContextTimeout(context.Background(), 200*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		done, word := cond(ctx)
		// A call cut short by the deadline says nothing about the state.
		if ctx.Err() == nil || last == "" {
			last = word
		}
		return done, nil
	})
	if err != nil {
		t.Fatalf("%s: not within %s; last: %s", what, timeout, last)
	}
}

func describePods(pods []corev1.Pod) string {
	if len(pods) == 0 {
		return "(no pods)"
	}
	var parts []string
	for i := range pods {
		parts = append(parts, describePod(&pods[i]))
	}
	return strings.Join(parts, "; ")
}

func describePod(p *corev1.Pod) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s/%s phase=%s node=%q ip=%q", p.Namespace, p.Name, p.Status.Phase, p.Spec.NodeName, p.Status.PodIP)
	for _, c := range p.Status.Conditions {
		if c.Status != corev1.ConditionTrue && c.Message != "" {
			fmt.Fprintf(&b, " %s=%s(%s: %s)", c.Type, c.Status, c.Reason, c.Message)
		}
	}
	for _, cs := range p.Status.ContainerStatuses {
		fmt.Fprintf(&b, " [%s restarts=%d", cs.Name, cs.RestartCount)
		switch {
		case cs.State.Waiting != nil:
			fmt.Fprintf(&b, " waiting %s: %s", cs.State.Waiting.Reason, cs.State.Waiting.Message)
		case cs.State.Running != nil:
			b.WriteString(" running")
		case cs.State.Terminated != nil:
			fmt.Fprintf(&b, " terminated %s exit=%d", cs.State.Terminated.Reason, cs.State.Terminated.ExitCode)
		}
		b.WriteString("]")
	}
	return b.String()
}

// sleeper is a busybox pod that waits to be stopped.
func sleeper(name string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: ptr.To[int64](2),
			Containers: []corev1.Container{{
				Name:    "main",
				Image:   hub.Image(),
				Command: []string{"sh", "-c", "trap 'exit 0' TERM; while sleep 1; do :; done"},
			}},
		},
	}
}

// waitRunning waits until the hub reports the pod Running on node, and
// returns it.
func waitRunning(t *testing.T, ns, name, node string) *corev1.Pod {
	t.Helper()
	var pod *corev1.Pod
	poll(t, 2*time.Minute, fmt.Sprintf("pod %s/%s Running on %s", ns, name, node), func(ctx context.Context) (bool, string) {
		p, err := hub.Client().CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		pod = p
		return p.Spec.NodeName == node && p.Status.Phase == corev1.PodRunning, describePod(p)
	})
	return pod
}

// kubectl runs the kubectl built with the control plane against the hub.
func kubectl(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, hub.Kubectl(), append([]string{"--kubeconfig", hub.Kubeconfig()}, args...)...)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, stderr.String())
	}
	return out.String(), nil
}
