package e2e

import (
	"context"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// TestAgentKilled: kill -9 of the agent leaves its containers running; the
// restarted agent adopts them (same processes, same pod IP) and cleans up
// the pods deleted while it was down, gracefully or by force, network and
// all.
func TestAgentKilled(t *testing.T) {
	ns := namespace(t)
	pods := env.Client().CoreV1().Pods(ns)
	uids := map[string]string{}
	for _, name := range []string{"kept", "deleted", "forced"} {
		uids[name] = string(createPod(t, ns, busyboxPod(name, "sleep 3600", corev1.RestartPolicyAlways)).UID)
	}
	for name := range uids {
		waitPod(t, ns, name, time.Minute, "Running", phaseIs(corev1.PodRunning))
	}
	before := taskPIDs(t, uids["kept"])
	if len(before) != 1 {
		t.Fatalf("kept pod: %d running tasks, want 1", len(before))
	}
	keptIP := podIP(t, ns, "kept")
	netBefore := hostNetworkState(t)

	if err := env.KillAgent(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := pods.Delete(ctx, "deleted", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := pods.Delete(ctx, "forced", metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil {
		t.Fatal(err)
	}
	if got := taskPIDs(t, uids["kept"]); !maps.Equal(got, before) {
		t.Fatalf("with the agent down, the kept pod's tasks are %v, were %v", got, before)
	}
	startCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := env.StartAgent(startCtx); err != nil {
		t.Fatalf("restart the agent: %v", err)
	}

	waitGone(t, ns, "deleted", time.Minute)
	waitFor(t, time.Minute, "the deleted pods' containers removed", func() (bool, string) {
		d, f := inspectHost(t, uids["deleted"]), inspectHost(t, uids["forced"])
		return d == (hostState{}) && f == (hostState{}), ""
	})
	p := waitPod(t, ns, "kept", time.Minute, "Running", phaseIs(corev1.PodRunning))
	if got := taskPIDs(t, uids["kept"]); !maps.Equal(got, before) {
		t.Errorf("after the restart the kept pod's tasks are %v, were %v: not adopted", got, before)
	}
	if rc := p.Status.ContainerStatuses[0].RestartCount; rc != 0 {
		t.Errorf("kept pod restartCount %d, want 0", rc)
	}
	if p.Status.PodIP != keptIP {
		t.Errorf("after the restart the kept pod's IP is %q, was %q", p.Status.PodIP, keptIP)
	}
	// The deleted pods' addresses and veths are freed; the kept pod's stay.
	waitFor(t, time.Minute, "the deleted pods' network freed", func() (bool, string) {
		now := hostNetworkState(t)
		owners := allocationOwners(t)
		state := fmt.Sprintf("before %+v, now %+v, allocations %v", netBefore, now, owners)
		return now.veths <= netBefore.veths-2 && !owners[uids["deleted"]] && !owners[uids["forced"]] && owners[uids["kept"]], state
	})
}

// allocationOwners are the pod UIDs host-local holds an address for: each
// allocation file holds its attachment's container ID, the pod's UID.
func allocationOwners(t *testing.T) map[string]bool {
	t.Helper()
	dir := filepath.Join(env.Paths().DataDir, "fedlet", "cni", "ipam", "fedlet")
	entries, _ := os.ReadDir(dir)
	owners := map[string]bool{}
	for _, e := range entries {
		if net.ParseIP(e.Name()) == nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err == nil {
			owners[strings.Fields(string(data) + " x")[0]] = true
		}
	}
	return owners
}

// TestContainerdRestarted: with containerd stopped the node says it is not
// ready; once containerd is back the node recovers and no pod was lost.
func TestContainerdRestarted(t *testing.T) {
	ns := namespace(t)
	uid := string(createPod(t, ns, busyboxPod("steady", "sleep 3600", corev1.RestartPolicyAlways)).UID)
	waitPod(t, ns, "steady", time.Minute, "Running", phaseIs(corev1.PodRunning))
	before := taskPIDs(t, uid)

	if err := env.StopContainerd(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "the node NotReady", func() (bool, string) {
		return nodeReady(t) == corev1.ConditionFalse, string(nodeReady(t))
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := env.StartContainerd(ctx); err != nil {
		t.Fatalf("restart containerd: %v", err)
	}
	waitFor(t, time.Minute, "the node Ready again", func() (bool, string) {
		return nodeReady(t) == corev1.ConditionTrue, string(nodeReady(t))
	})
	p := waitPod(t, ns, "steady", time.Minute, "Running", phaseIs(corev1.PodRunning))
	if got := taskPIDs(t, uid); !maps.Equal(got, before) {
		t.Errorf("after containerd's restart the pod's tasks are %v, were %v", got, before)
	}
	if rc := p.Status.ContainerStatuses[0].RestartCount; rc != 0 {
		t.Errorf("restartCount %d, want 0", rc)
	}
	// The node still runs new pods.
	createPod(t, ns, busyboxPod("after", "echo after", corev1.RestartPolicyNever))
	waitPod(t, ns, "after", time.Minute, "Succeeded", phaseIs(corev1.PodSucceeded))
}

// TestAPIServerDown: the agent keeps containers running while the API
// server is away, and reports what happened meanwhile once it is back.
func TestAPIServerDown(t *testing.T) {
	ns := namespace(t)
	uid := string(createPod(t, ns, busyboxPod("long", "sleep 3600", corev1.RestartPolicyAlways)).UID)
	createPod(t, ns, busyboxPod("short", "sleep 15; echo done", corev1.RestartPolicyNever))
	waitPod(t, ns, "long", time.Minute, "Running", phaseIs(corev1.PodRunning))
	waitPod(t, ns, "short", time.Minute, "Running", phaseIs(corev1.PodRunning))
	before := taskPIDs(t, uid)

	if err := env.KillAPIServer(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Minute) // "short" exits while the API server is away
	if got := taskPIDs(t, uid); !maps.Equal(got, before) {
		t.Errorf("with the API server down the tasks are %v, were %v", got, before)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := env.StartAPIServer(ctx); err != nil {
		t.Fatalf("restart the API server: %v", err)
	}
	waitPod(t, ns, "short", 2*time.Minute, "Succeeded", phaseIs(corev1.PodSucceeded))
	waitPod(t, ns, "long", time.Minute, "Running", phaseIs(corev1.PodRunning))
	if got := taskPIDs(t, uid); !maps.Equal(got, before) {
		t.Errorf("after the API server's return the tasks are %v, were %v", got, before)
	}
	waitFor(t, time.Minute, "the node Ready", func() (bool, string) {
		return nodeReady(t) == corev1.ConditionTrue, string(nodeReady(t))
	})
}

func nodeReady(t *testing.T) corev1.ConditionStatus {
	t.Helper()
	n, err := env.Client().CoreV1().Nodes().Get(context.Background(), env.NodeName(), metav1.GetOptions{})
	if err != nil {
		return corev1.ConditionUnknown
	}
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status
		}
	}
	return corev1.ConditionUnknown
}
