package e2e

import (
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// TestPodNetworkNamespaces: a pod has a private network namespace with
// loopback (up) and the network plugin's eth0, and a hostNetwork pod shares
// the host's.
func TestPodNetworkNamespaces(t *testing.T) {
	ns := namespace(t)
	script := "readlink /proc/self/ns/net; ls /sys/class/net | tr '\\n' ' '; echo; cat /sys/class/net/lo/operstate"
	createPod(t, ns, busyboxPod("private", script, corev1.RestartPolicyNever))
	host := busyboxPod("host", script, corev1.RestartPolicyNever)
	host.Spec.HostNetwork = true
	createPod(t, ns, host)

	hostNS, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	for name, wantHost := range map[string]bool{"private": false, "host": true} {
		p := waitPod(t, ns, name, time.Minute, "Succeeded", phaseIs(corev1.PodSucceeded))
		out, err := kubectl(t, "-n", ns, "logs", name)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 3 {
			t.Fatalf("%s: output %q", name, out)
		}
		if got := lines[0] == hostNS; got != wantHost {
			t.Errorf("%s: network namespace %s, host's %s", name, lines[0], hostNS)
		}
		if !wantHost && (strings.TrimSpace(lines[1]) != "eth0 lo" || lines[2] != "unknown" && lines[2] != "up") {
			t.Errorf("%s: interfaces %q, lo %q; want eth0 and lo, up", name, lines[1], lines[2])
		}
		if p.Status.HostIP == "" {
			t.Errorf("%s: no hostIP", name)
		}
		if wantHost && p.Status.PodIP != p.Status.HostIP {
			t.Errorf("host network pod: podIP %q, hostIP %q", p.Status.PodIP, p.Status.HostIP)
		}
	}
}
