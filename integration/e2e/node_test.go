package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
)

func TestNodeIsRegistered(t *testing.T) {
	ctx := context.Background()
	node, err := env.Client().CoreV1().Nodes().Get(ctx, env.NodeName(), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourcePods} {
		if q, ok := node.Status.Allocatable[r]; !ok || q.IsZero() {
			t.Errorf("allocatable %s = %v", r, q)
		}
	}
	info := node.Status.NodeInfo
	if !strings.HasPrefix(info.ContainerRuntimeVersion, "containerd://2.") || info.KernelVersion == "" || info.OperatingSystem != "linux" || info.Architecture == "" {
		t.Errorf("nodeInfo = %+v", info)
	}
	var internal bool
	for _, a := range node.Status.Addresses {
		internal = internal || a.Type == corev1.NodeInternalIP
	}
	if !internal {
		t.Errorf("no InternalIP in %v", node.Status.Addresses)
	}
	if node.Status.DaemonEndpoints.KubeletEndpoint.Port == 0 {
		t.Errorf("no kubelet endpoint port")
	}
	conditions := map[corev1.NodeConditionType]corev1.ConditionStatus{}
	for _, c := range node.Status.Conditions {
		conditions[c.Type] = c.Status
	}
	if conditions[corev1.NodeReady] != corev1.ConditionTrue || conditions["RuntimePluginReady"] != corev1.ConditionTrue || conditions[corev1.NodeMemoryPressure] != corev1.ConditionFalse {
		t.Errorf("conditions = %v", conditions)
	}

	// The Lease is the heartbeat: it is renewed every 10 seconds.
	leases := env.Client().CoordinationV1().Leases(corev1.NamespaceNodeLease)
	first, err := leases.Get(ctx, env.NodeName(), metav1.GetOptions{})
	if err != nil {
		t.Fatalf("node lease: %v", err)
	}
	if len(first.OwnerReferences) != 1 || first.OwnerReferences[0].UID != node.UID {
		t.Errorf("lease owner = %v, want the node", first.OwnerReferences)
	}
	err = wait.PollUntilContextTimeout(ctx, time.Second, 40*time.Second, false, func(ctx context.Context) (bool, error) {
		l, err := leases.Get(ctx, env.NodeName(), metav1.GetOptions{})
		return err == nil && l.Spec.RenewTime.After(first.Spec.RenewTime.Time), nil
	})
	if err != nil {
		t.Errorf("lease not renewed within 40s (renewTime %v)", first.Spec.RenewTime)
	}
}

func TestNodeAPIRefusesAnonymous(t *testing.T) {
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, // only the server's answer is under test
	}}
	url := fmt.Sprintf("https://127.0.0.1:%d/containerLogs/default/any/main", ports.NodeAPI)
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("anonymous GET %s = %d, want 401", url, resp.StatusCode)
	}
}
