package plugin_test

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fedlet/fedlet/plugins/pluginhost"
	networkv1 "github.com/fedlet/fedlet/plugins/proto/network/v1"
)

// TestGCAfterPluginKill sets two pods up, kills the plugin with SIGKILL
// (the plugin host restarts it), then has GC keep only B: A's address,
// veth and NAT rules go. Then libcni's result cache is wiped, as if the
// ADD had been cut short before libcni wrote it, and GC with nothing valid
// still finds B through the plugin's own record and removes it.
func TestGCAfterPluginKill(t *testing.T) {
	net := newTestNetwork(t)
	n := startPlugin(t, net.config())
	client := n.Client()
	ctx := t.Context()

	nsA, nsB := newNetns(t), newNetns(t)
	addA, addB := addRequest(randomName("pod-a-"), nsA, net.subnet.String()), addRequest(randomName("pod-b-"), nsB, net.subnet.String())
	addA.PortMappings = []*networkv1.PortMapping{{HostPort: 31082, ContainerPort: 80}}
	resA, err := client.Add(ctx, addA)
	if err != nil {
		t.Fatalf("Add A: %v", err)
	}
	resB, err := client.Add(ctx, addB)
	if err != nil {
		t.Fatalf("Add B: %v", err)
	}
	vethA, vethB := hostVeth(t, resA, net.bridge), hostVeth(t, resB, net.bridge)
	ipB, _ := podIP(t, resB, nsB)

	killPlugin(t, n)

	gc, err := client.GC(ctx, &networkv1.GCRequest{Node: testNode, ValidAttachments: []*networkv1.Attachment{addB.Attachment}})
	if err != nil {
		t.Fatalf("GC keeping B: %v", err)
	}
	if len(gc.GetRemoved()) != 1 || gc.GetRemoved()[0].GetContainerId() != addA.Attachment.ContainerId {
		t.Errorf("GC removed %v, want only A (%s)", gc.GetRemoved(), addA.Attachment.ContainerId)
	}
	if files := net.ipFiles(t); !slices.Equal(files, []string{ipB.Addr().String()}) {
		t.Errorf("after GC host-local holds %v, want only B's %s", files, ipB.Addr())
	}
	if linkExists(vethA) {
		t.Errorf("A's veth %s survived GC", vethA)
	}
	if rules := natRulesOf(t, addA.Attachment.ContainerId); len(rules) != 0 {
		t.Errorf("A's NAT rules survived GC: %v", rules)
	}
	if !linkExists(vethB) {
		t.Errorf("B's veth %s was removed by a GC that named B valid", vethB)
	}
	if out, err := inNetns(nsB, "/bin/busybox", "ping", "-c", "1", "-W", "5", net.subnet.Addr().Next().String()); err != nil {
		t.Errorf("B lost its network in GC: %v\n%s", err, out)
	}

	if err := os.RemoveAll(filepath.Join(net.cacheDir, testNode, "results")); err != nil {
		t.Fatal(err)
	}
	gc, err = client.GC(ctx, &networkv1.GCRequest{Node: testNode})
	if err != nil {
		t.Fatalf("GC with nothing valid: %v", err)
	}
	if len(gc.GetRemoved()) != 1 || gc.GetRemoved()[0].GetContainerId() != addB.Attachment.ContainerId {
		t.Errorf("GC without libcni's cache removed %v, want B (%s) from its record", gc.GetRemoved(), addB.Attachment.ContainerId)
	}
	if files := net.ipFiles(t); len(files) != 0 {
		t.Errorf("after GC host-local holds %v", files)
	}
	if linkExists(vethB) {
		t.Errorf("B's veth %s survived GC", vethB)
	}

	// Nothing is left to collect.
	if gc, err := client.GC(ctx, &networkv1.GCRequest{Node: testNode}); err != nil || len(gc.GetRemoved()) != 0 {
		t.Errorf("third GC = %v, %v; want nothing removed", gc, err)
	}
}

// killPlugin sends SIGKILL to the plugin process and waits for the host to
// have restarted it.
func killPlugin(t *testing.T, n *pluginhost.Network) {
	t.Helper()
	events, cancel := n.Subscribe()
	defer cancel()
	// The Started message ends "is running as pid <pid>".
	ev := <-events
	pid, err := strconv.Atoi(ev.Message[strings.LastIndex(ev.Message, " ")+1:])
	if ev.Kind != pluginhost.Started || err != nil {
		t.Fatalf("no pid in the plugin's state %v %q: %v", ev.Kind, ev.Message, err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(time.Minute)
	sawDown := false
	for {
		select {
		case ev := <-events:
			if ev.Kind == pluginhost.Down {
				sawDown = true
			}
			if ev.Kind == pluginhost.Started && sawDown {
				return
			}
		case <-deadline:
			t.Fatal("the network plugin was not restarted within a minute of kill -9")
		}
	}
}
