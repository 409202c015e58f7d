package federation

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestHubAgentRestartLeavesTheMemberPodAlone: the hub's agent is killed and
// started again while a pod of the hub runs in the member. The restarted
// agent lists its runtimes, collects its pod network's garbage (knowing
// only the hub's pods, on the machine's nftables that the member's pods
// use too) and adopts what the member runs: the member's pod is the same
// one, never restarted, its masquerade rule is still there, and the hub
// still reports it Running.
func TestHubAgentRestartLeavesTheMemberPodAlone(t *testing.T) {
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("nft is not installed: cannot read the masquerade rules")
	}
	ns := namespace(t)
	ctx := context.Background()
	far := sleeper("far")
	toMember(&far.Spec)
	if _, err := hub.Client().CoreV1().Pods(ns).Create(ctx, far, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitRunning(t, ns, far.Name, member.Name())
	pods, err := memberPods(ctx, ns)
	if err != nil || len(pods) != 1 {
		t.Fatalf("member pods of %s: %s (%v)", ns, describePods(pods), err)
	}
	before := pods[0]
	// The member attaches its pod as (pod UID, eth0) on its own network.
	rule := fmt.Sprintf("net: %s, if: eth0, id: %s", member.PodNetwork().Name, before.UID)
	if rules := masqueradeRules(t); !strings.Contains(rules, rule) {
		t.Fatalf("no masquerade rule %q for the member's pod:\n%s", rule, rules)
	}

	if err := hub.KillAgent(); err != nil {
		t.Fatal(err)
	}
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
