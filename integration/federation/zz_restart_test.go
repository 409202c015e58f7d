package federation

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/fedlet/fedlet/core/podproxy"
	"github.com/fedlet/fedlet/plugins/sdk/testenv"
)

// TestHubAgentRestartLeavesTheMemberPodAlone: the hub's agent is killed and
// started again while a pod of the hub runs in the member. The restarted
// agent lists its runtimes, collects its pod network's garbage (knowing
// only the hub's pods, on the machine's nftables that the member's pods
// use too) and adopts what the member runs: the member's pod is the same
// one, never restarted, its masquerade rule is still there, and the hub
// still reports it Running. A second pod, deleted in the member while the
// agent was down, is reported lost on the hub and not created again. The
// adopted pod, deleted on the hub, goes from the member.
func TestHubAgentRestartLeavesTheMemberPodAlone(t *testing.T) {
	if _, err := exec.LookPath("nft"); err != nil {
		testenv.Missing(t, "nft is not installed (integration/install-deps.sh installs nftables): cannot read the masquerade rules")
	}
	ns := namespace(t)
	ctx := context.Background()
	far, vanishing := sleeper("far"), sleeper("vanishing")
	for _, p := range []*corev1.Pod{far, vanishing} {
		toMember(&p.Spec)
		if _, err := hub.Client().CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitRunning(t, ns, p.Name, member.Name())
	}
	pods, err := memberPods(ctx, ns)
	if err != nil || len(pods) != 2 {
		t.Fatalf("member pods of %s: %s (%v)", ns, describePods(pods), err)
	}
	byName := map[string]corev1.Pod{}
	for _, p := range pods {
		byName[p.Name] = p
	}
	before, gone := byName[far.Name], byName[vanishing.Name]
	// The member attaches its pod as (pod UID, eth0) on its own network.
	rule := fmt.Sprintf("net: %s, if: eth0, id: %s", member.PodNetwork().Name, before.UID)
	if rules := masqueradeRules(t); !strings.Contains(rules, rule) {
		t.Fatalf("no masquerade rule %q for the member's pod:\n%s", rule, rules)
	}

	if err := hub.KillAgent(); err != nil {
		t.Fatal(err)
	}
	if err := member.Client().CoreV1().Pods(gone.Namespace).Delete(ctx, gone.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil {
		t.Fatalf("delete the member's pod %s while the hub agent is down: %v", gone.Name, err)
	}
	poll(t, time.Minute, "the member's pod "+gone.Name+" gone", func(ctx context.Context) (bool, string) {
		_, err := member.Client().CoreV1().Pods(gone.Namespace).Get(ctx, gone.Name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), fmt.Sprint(err)
	})
	if err := hub.StartAgent(ctx); err != nil {
		t.Fatalf("restart the hub's agent: %v", err)
	}
	// The agent acts on pods only once it has listed its runtime, and it
	// collects the network's garbage in that listing: a new pod of the hub
	// Running says the collection is done.
	near := sleeper("near")
	near.Spec.NodeName = hub.NodeName()
	if _, err := hub.Client().CoreV1().Pods(ns).Create(ctx, near, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitRunning(t, ns, near.Name, hub.NodeName())
	if rules := masqueradeRules(t); !strings.Contains(rules, rule) {
		t.Errorf("the member pod's masquerade rule %q is gone after the hub agent's restart:\n%s", rule, rules)
	}
	waitRunning(t, ns, far.Name, member.Name())
	pods, err = memberPods(ctx, ns)
	if err != nil {
		t.Fatal(err)
	}
	if len(pods) != 1 || pods[0].UID != before.UID || restarts(&pods[0]) != 0 || pods[0].Status.Phase != corev1.PodRunning {
		t.Errorf("the member's pod changed with the hub agent's restart: was %s (uid %s), now %s", describePod(&before), before.UID, describePods(pods))
	}

	// Lost while nobody watched: reported, never made again.
	poll(t, time.Minute, "the hub pod "+vanishing.Name+" reported lost", func(ctx context.Context) (bool, string) {
		p, err := hub.Client().CoreV1().Pods(ns).Get(ctx, vanishing.Name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		return p.Status.Phase == corev1.PodFailed && p.Status.Reason == podproxy.ReasonPodLost, describePod(p) + " reason " + p.Status.Reason
	})
	if pods, err := memberPods(ctx, ns); err != nil || len(pods) != 1 {
		t.Errorf("member pods after the lost one was reported: %s (%v); want only %s", describePods(pods), err, far.Name)
	}

	// The restarted agent owns what it adopted: a deletion on the hub
	// reaches the member.
	if err := hub.Client().CoreV1().Pods(ns).Delete(ctx, far.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, time.Minute, "the adopted pod gone from the member and the hub", func(ctx context.Context) (bool, string) {
		pods, err := memberPods(ctx, ns)
		if err != nil {
			return false, err.Error()
		}
		_, herr := hub.Client().CoreV1().Pods(ns).Get(ctx, far.Name, metav1.GetOptions{})
		for _, p := range pods {
			if p.Name == far.Name {
				return false, "member still has " + describePod(&p)
			}
		}
		return apierrors.IsNotFound(herr), fmt.Sprint(herr)
	})
}

// restarts is how many times the pod's containers were restarted.
func restarts(p *corev1.Pod) int32 {
	var n int32
	for _, cs := range p.Status.ContainerStatuses {
		n += cs.RestartCount
	}
	return n
}

// masqueradeRules lists the CNI plugins' masquerade rules of the machine.
func masqueradeRules(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("nft", "list", "chain", "inet", "cni_plugins_masquerade", "masq_checks").CombinedOutput()
	if err != nil {
		t.Fatalf("nft list chain inet cni_plugins_masquerade masq_checks: %v: %s", err, out)
	}
	return string(out)
}
