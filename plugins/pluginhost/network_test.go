package pluginhost

import (
	"context"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	networkv1 "github.com/fedlet/fedlet/plugins/proto/network/v1"
)

func testNetworkSpec() NetworkSpec {
	return NetworkSpec{
		Name:   "net",
		Plugin: testNetworkName,
		Config: []byte(`{"bridge":"test0"}`),
		Nodes:  []string{"node-a"},
	}
}

// startTestNetwork starts the test network plugin and stops it when the test
// ends.
func startTestNetwork(t *testing.T, h *Host) *Network {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	n, err := h.StartNetwork(ctx, testNetworkSpec())
	if err != nil {
		cancel()
		t.Fatalf("StartNetwork: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		select {
		case <-n.Done():
		case <-time.After(time.Minute):
			t.Error("network did not stop within a minute of its context ending")
		}
	})
	return n
}

// networkStatus calls Status through the Network's client and returns the
// test plugin's message fields (pid, configure-calls, config).
func networkStatus(t *testing.T, n *Network) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := n.Client().Status(ctx, &networkv1.StatusRequest{Node: "node-a"})
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	if !st.GetReady() {
		t.Fatalf("Status = %v, want ready", st)
	}
	fields := map[string]string{}
	for _, f := range strings.Fields(st.GetMessage()) {
		k, v, _ := strings.Cut(f, "=")
		fields[k] = v
	}
	return fields
}

func TestNetworkStartAndCall(t *testing.T) {
	h, _ := newTestHost(t, Config{})
	n := startTestNetwork(t, h)

	if d := n.Describe(); d.GetName() != "testnetwork" || d.GetVersion() != "0.0.1" {
		t.Errorf("Describe() = %v", d)
	}
	if up, reason, _ := n.State(); !up || reason != ReasonRunning {
		t.Errorf("State() = %v, %q; want up, %q", up, reason, ReasonRunning)
	}
	st := networkStatus(t, n)
	if st["configure-calls"] != "1" || st["config"] != string(testNetworkSpec().Config) {
		t.Errorf("plugin configured %s times with %q, want once with %s", st["configure-calls"], st["config"], testNetworkSpec().Config)
	}

	ctx := t.Context()
	add := &networkv1.AddRequest{
		Node:       "node-a",
		Attachment: &networkv1.Attachment{ContainerId: "uid-1", Ifname: "eth0"},
		NetnsPath:  "/run/netns/fedlet-uid-1",
		Pod:        &networkv1.PodRef{Uid: "uid-1", Namespace: "default", Name: "p"},
		IpRanges:   []*networkv1.IPRangeSet{{Ranges: []*networkv1.IPRange{{Subnet: "10.77.3.0/24"}}}},
	}
	res, err := n.Client().Add(ctx, add)
	if err != nil {
		t.Fatalf("Add: %v", err)
	}
	if len(res.GetIps()) != 1 {
		t.Fatalf("Add result has %d IPs, want 1: %v", len(res.GetIps()), res)
	}
	addr, err := netip.ParsePrefix(res.GetIps()[0].GetAddress())
	if err != nil || !netip.MustParsePrefix("10.77.3.0/24").Contains(addr.Addr()) {
		t.Errorf("Add gave address %q (%v), want one in 10.77.3.0/24", res.GetIps()[0].GetAddress(), err)
	}
	again, err := n.Client().Add(ctx, add)
	if err != nil || again.GetIps()[0].GetAddress() != res.GetIps()[0].GetAddress() {
		t.Errorf("repeated Add = %v, %v; want the same address %s", again, err, res.GetIps()[0].GetAddress())
	}

	gc, err := n.Client().GC(ctx, &networkv1.GCRequest{Node: "node-a"})
	if err != nil || len(gc.GetRemoved()) != 1 || gc.GetRemoved()[0].GetContainerId() != "uid-1" {
		t.Errorf("GC with no valid attachment = %v, %v; want uid-1/eth0 removed", gc, err)
	}
	_, err = n.Client().Check(ctx, &networkv1.CheckRequest{Node: "node-a", Attachment: add.Attachment})
	if status.Code(err) != codes.NotFound {
		t.Errorf("Check after GC: %v, want NotFound", err)
	}
	if _, err := n.Client().Del(ctx, &networkv1.DelRequest{Node: "node-a", Attachment: add.Attachment}); err != nil {
		t.Errorf("Del of a removed attachment: %v, want success", err)
	}
}

func TestNetworkRestartAfterKill(t *testing.T) {
	h, _ := newTestHost(t, Config{})
	n := startTestNetwork(t, h)
	events, unsubscribe := n.Subscribe()
	defer unsubscribe()
	if ev := nextNetworkEvent(t, events, time.Second); ev.Kind != Started || ev.Describe.GetName() != "testnetwork" {
		t.Fatalf("first event = %v, want Started by testnetwork", ev)
	}

	oldPID, err := strconv.Atoi(networkStatus(t, n)["pid"])
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(oldPID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if ev := nextNetworkEvent(t, events, 30*time.Second); ev.Kind != Down || ev.Reason != ReasonExited {
		t.Errorf("after kill -9: %v %s %q; want Down %s", ev.Kind, ev.Reason, ev.Message, ReasonExited)
	}
	if ev := nextNetworkEvent(t, events, time.Minute); ev.Kind != Started || ev.Describe.GetName() != "testnetwork" {
		t.Fatalf("after Down: %v %s %q; want Started", ev.Kind, ev.Reason, ev.Message)
	}

	// The same client reaches the new process, which was configured again.
	st := networkStatus(t, n)
	if st["pid"] == strconv.Itoa(oldPID) {
		t.Errorf("the call after the restart reached the killed process %d", oldPID)
	}
	if st["configure-calls"] != "1" || st["config"] != string(testNetworkSpec().Config) {
		t.Errorf("new process configured %s times with %q, want once with %s", st["configure-calls"], st["config"], testNetworkSpec().Config)
	}
}

// TestRuntimeBinaryRefusedAsNetwork starts a runtime plugin as a network
// plugin: the handshake succeeds (both speak version 1), but the binary
// serves no network service, and the error says so.
func TestRuntimeBinaryRefusedAsNetwork(t *testing.T) {
	h, _ := newTestHost(t, Config{})
	spec := testNetworkSpec()
	spec.Plugin = testPluginName
	_, err := h.StartNetwork(t.Context(), spec)
	if err == nil {
		t.Fatal("a runtime plugin binary was started as a network plugin")
	}
	for _, want := range []string{"start network plugin net", "does not serve the network protocol", "is it a network plugin?"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

func nextNetworkEvent(t *testing.T, events <-chan NetworkEvent, timeout time.Duration) NetworkEvent {
	t.Helper()
	select {
	case ev, ok := <-events:
		if !ok {
			t.Fatal("event channel closed")
		}
		return ev
	case <-time.After(timeout):
		t.Fatalf("no event within %v", timeout)
	}
	return NetworkEvent{}
}
