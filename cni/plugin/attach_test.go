package plugin_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/fedlet/fedlet/cni/plugin"
	networkv1 "github.com/fedlet/fedlet/plugins/proto/network/v1"
)

// TestAttachPingDetach runs the CNI plugin built from this tree through the
// agent's plugin host on real network namespaces with the standard bridge,
// host-local and portmap plugins and the default conflist: two pods get
// addresses from the node's range, reach each other and the host, a
// repeated Add changes nothing, and Del frees the address, the veth and the
// NAT rules.
func TestAttachPingDetach(t *testing.T) {
	net := newTestNetwork(t)
	client := startPlugin(t, net.config()).Client()
	ctx := t.Context()

	st := statusOf(t, client)
	if !st.GetReady() || st.GetNetworkName() != plugin.DefaultNetworkName {
		t.Fatalf("Status = %v; want ready, network %s", st, plugin.DefaultNetworkName)
	}
	if !slices.Equal(st.GetCapabilities(), []string{"ipRanges", "portMappings"}) {
		t.Errorf("capabilities = %v, want [ipRanges portMappings]", st.GetCapabilities())
	}

	nsA, nsB := newNetns(t), newNetns(t)
	uidA, uidB := randomName("pod-a-"), randomName("pod-b-")
	addA := addRequest(uidA, nsA, net.subnet.String())
	addA.PortMappings = []*networkv1.PortMapping{{HostPort: 31080, ContainerPort: 8080, Protocol: "TCP"}}
	resA, err := client.Add(ctx, addA)
	if err != nil {
		t.Fatalf("Add A: %v", err)
	}
	t.Logf("A: %v", resA)
	ipA, gw := podIP(t, resA, nsA)
	if !net.subnet.Contains(ipA.Addr()) || ipA.Bits() != 24 {
		t.Errorf("A got %s, want an address of %s", ipA, net.subnet)
	}
	if gw != net.subnet.Addr().Next().String() {
		t.Errorf("gateway %s, want the subnet's first address %s", gw, net.subnet.Addr().Next())
	}
	if !slices.ContainsFunc(resA.GetRoutes(), func(r *networkv1.Route) bool { return r.GetDst() == "0.0.0.0/0" }) {
		t.Errorf("result has no default route: %v", resA.GetRoutes())
	}
	if out, err := inNetns(nsA, "ip", "route", "show", "default"); err != nil || !strings.Contains(string(out), "via "+gw) {
		t.Errorf("default route in A: %s %v; want via %s", out, err, gw)
	}
	vethA := hostVeth(t, resA, net.bridge)
	if !linkExists(vethA) || !slices.Contains(net.bridgePorts(t), vethA) {
		t.Errorf("A's veth %s is not on bridge %s (ports %v)", vethA, net.bridge, net.bridgePorts(t))
	}
	rules := natRulesOf(t, uidA)
	if !slices.ContainsFunc(rules, func(l string) bool { return strings.Contains(l, "31080") }) {
		t.Errorf("no DNAT rule for A's host port 31080 among its NAT rules:\n%s", strings.Join(rules, "\n"))
	}
	if !slices.ContainsFunc(rules, func(l string) bool { return strings.Contains(l, "masquerade") }) {
		t.Errorf("no masquerade rule for A among its NAT rules:\n%s", strings.Join(rules, "\n"))
	}

	resB, err := client.Add(ctx, addRequest(uidB, nsB, net.subnet.String()))
	if err != nil {
		t.Fatalf("Add B: %v", err)
	}
	ipB, _ := podIP(t, resB, nsB)
	if ipB.Addr() == ipA.Addr() {
		t.Fatalf("A and B both got %s", ipA)
	}
	if out, err := inNetns(nsA, "/bin/busybox", "ping", "-c", "1", "-W", "5", ipB.Addr().String()); err != nil {
		t.Errorf("A cannot ping B (%s): %v\n%s", ipB.Addr(), err, out)
	}
	if out, err := inNetns(nsB, "/bin/busybox", "ping", "-c", "1", "-W", "5", gw); err != nil {
		t.Errorf("B cannot ping the host's bridge address %s: %v\n%s", gw, err, out)
	}
	if files := net.ipFiles(t); len(files) != 2 {
		t.Errorf("host-local holds %v, want the two pods' addresses", files)
	}

	again, err := client.Add(ctx, addA)
	if err != nil {
		t.Fatalf("repeated Add A: %v", err)
	}
	if ip, _ := podIP(t, again, nsA); ip != ipA || hostVeth(t, again, net.bridge) != vethA {
		t.Errorf("repeated Add A gave %s on %s; want the same %s on %s", ip, hostVeth(t, again, net.bridge), ipA, vethA)
	}
	if files := net.ipFiles(t); len(files) != 2 {
		t.Errorf("after a repeated Add host-local holds %v, want 2 addresses", files)
	}
	if _, err := client.Check(ctx, &networkv1.CheckRequest{Node: testNode, Attachment: addA.Attachment, NetnsPath: nsA}); err != nil {
		t.Errorf("Check A: %v", err)
	}

	delA := &networkv1.DelRequest{Node: testNode, Attachment: addA.Attachment, NetnsPath: nsA, Pod: addA.Pod}
	if _, err := client.Del(ctx, delA); err != nil {
		t.Fatalf("Del A: %v", err)
	}
	if files := net.ipFiles(t); !slices.Equal(files, []string{ipB.Addr().String()}) {
		t.Errorf("after Del A host-local holds %v, want only B's %s", files, ipB.Addr())
	}
	if linkExists(vethA) {
		t.Errorf("A's veth %s is still there", vethA)
	}
	if out, err := inNetns(nsA, "ip", "link", "show", "eth0"); err == nil {
		t.Errorf("A's namespace still has eth0:\n%s", out)
	}
	if rules := natRulesOf(t, uidA); len(rules) != 0 {
		t.Errorf("A's NAT rules are still there:\n%s", strings.Join(rules, "\n"))
	}
	if _, err := client.Del(ctx, delA); err != nil {
		t.Errorf("repeated Del A: %v, want success", err)
	}
	_, err = client.Check(ctx, &networkv1.CheckRequest{Node: testNode, Attachment: addA.Attachment, NetnsPath: nsA})
	if status.Code(err) != codes.NotFound {
		t.Errorf("Check of deleted A: %v, want NotFound", err)
	}

	if _, err := client.Del(ctx, &networkv1.DelRequest{Node: testNode, Attachment: &networkv1.Attachment{ContainerId: uidB, Ifname: "eth0"}}); err != nil {
		t.Fatalf("Del B without its netns path: %v", err)
	}
	if files := net.ipFiles(t); len(files) != 0 {
		t.Errorf("after Del B host-local holds %v", files)
	}
	if ports := net.bridgePorts(t); len(ports) != 0 {
		t.Errorf("bridge %s still has ports %v", net.bridge, ports)
	}
	if entries, _ := os.ReadDir(filepath.Join(net.cacheDir, testNode, "attachments")); len(entries) != 0 {
		t.Errorf("%d attachment records left after every Del", len(entries))
	}
}

// TestFailedAddLeavesNothing fills a one-address range, so that the second
// pod's ADD fails in host-local after bridge made its veth: the plugin
// undoes it with DEL, and the first pod is untouched.
func TestFailedAddLeavesNothing(t *testing.T) {
	net := newTestNetwork(t)
	client := startPlugin(t, net.config()).Client()
	ctx := t.Context()
	only := net.subnet.Addr().Next().Next().Next() // .3
	oneAddress := []*networkv1.IPRangeSet{{Ranges: []*networkv1.IPRange{{
		Subnet: net.subnet.String(), RangeStart: only.String(), RangeEnd: only.String(),
	}}}}

	nsA, nsB := newNetns(t), newNetns(t)
	addA := addRequest(randomName("pod-a-"), nsA, "")
	addA.IpRanges = oneAddress
	resA, err := client.Add(ctx, addA)
	if err != nil {
		t.Fatalf("Add A: %v", err)
	}
	if ip, _ := podIP(t, resA, nsA); ip.Addr() != only {
		t.Fatalf("A got %s, want the range's only address %s", ip, only)
	}

	uidB := randomName("pod-b-")
	addB := addRequest(uidB, nsB, "")
	addB.IpRanges = oneAddress
	addB.PortMappings = []*networkv1.PortMapping{{HostPort: 31081, ContainerPort: 80}}
	_, err = client.Add(ctx, addB)
	t.Logf("Add B: %v", err)
	if status.Code(err) != codes.Internal || !strings.Contains(err.Error(), "CNI ADD") {
		t.Fatalf("Add B with no address left: %v; want Internal from CNI ADD", err)
	}
	if out, err := inNetns(nsB, "ip", "link", "show", "eth0"); err == nil {
		t.Errorf("B's namespace kept its eth0 after the failed ADD:\n%s", out)
	}
	if ports := net.bridgePorts(t); len(ports) != 1 || ports[0] != hostVeth(t, resA, net.bridge) {
		t.Errorf("bridge ports = %v, want only A's veth", ports)
	}
	if files := net.ipFiles(t); !slices.Equal(files, []string{only.String()}) {
		t.Errorf("host-local holds %v, want only A's %s", files, only)
	}
	if rules := natRulesOf(t, uidB); len(rules) != 0 {
		t.Errorf("B's NAT rules are there after its failed ADD:\n%s", strings.Join(rules, "\n"))
	}
	if _, err := os.Stat(filepath.Join(net.cacheDir, testNode, "attachments", uidB+"@eth0.json")); !os.IsNotExist(err) {
		t.Errorf("B's attachment record is still there: %v", err)
	}
	if _, err := client.Check(ctx, &networkv1.CheckRequest{Node: testNode, Attachment: addA.Attachment, NetnsPath: nsA}); err != nil {
		t.Errorf("Check A after B's failure: %v", err)
	}
	if _, err := client.Del(ctx, &networkv1.DelRequest{Node: testNode, Attachment: addA.Attachment, NetnsPath: nsA}); err != nil {
		t.Errorf("Del A: %v", err)
	}
}

// TestAddRepairsBrokenAttachment removes a pod's interface behind the
// plugin's back: Check reports it, and a repeated Add, instead of returning
// the stale result, sets the attachment up again.
func TestAddRepairsBrokenAttachment(t *testing.T) {
	net := newTestNetwork(t)
	client := startPlugin(t, net.config()).Client()
	ctx := t.Context()
	ns := newNetns(t)
	add := addRequest(randomName("pod-"), ns, net.subnet.String())
	if _, err := client.Add(ctx, add); err != nil {
		t.Fatalf("Add: %v", err)
	}
	if out, err := inNetns(ns, "ip", "link", "del", "eth0"); err != nil {
		t.Fatalf("delete eth0: %v\n%s", err, out)
	}
	check := &networkv1.CheckRequest{Node: testNode, Attachment: add.Attachment, NetnsPath: ns}
	if _, err := client.Check(ctx, check); status.Code(err) != codes.Internal || !strings.Contains(err.Error(), "CNI CHECK") {
		t.Errorf("Check of a pod without its interface: %v; want Internal from CNI CHECK", err)
	}

	res, err := client.Add(ctx, add)
	if err != nil {
		t.Fatalf("Add of the broken attachment: %v", err)
	}
	ip, gw := podIP(t, res, ns)
	if out, err := inNetns(ns, "ip", "-br", "addr", "show", "eth0"); err != nil || !strings.Contains(string(out), ip.String()) {
		t.Errorf("eth0 after the repair: %s %v; want %s", out, err, ip)
	}
	if out, err := inNetns(ns, "/bin/busybox", "ping", "-c", "1", "-W", "5", gw); err != nil {
		t.Errorf("the repaired pod cannot ping its gateway: %v\n%s", err, out)
	}
	if files := net.ipFiles(t); len(files) != 1 {
		t.Errorf("host-local holds %v after the repair, want one address", files)
	}
	if _, err := client.Check(ctx, check); err != nil {
		t.Errorf("Check after the repair: %v", err)
	}
	if _, err := client.GC(ctx, &networkv1.GCRequest{Node: testNode}); err != nil {
		t.Errorf("GC: %v", err)
	}
	if rules := natRulesOf(t, add.Attachment.ContainerId); len(rules) != 0 {
		t.Errorf("NAT rules left after the repaired pod's GC:\n%s", strings.Join(rules, "\n"))
	}
}

// TestConcurrentAdds attaches pods at once, as a runtime starting several
// pods does: each gets its own address on the one bridge, and GC removes
// them all.
func TestConcurrentAdds(t *testing.T) {
	net := newTestNetwork(t)
	client := startPlugin(t, net.config()).Client()
	ctx := t.Context()
	const pods = 6
	reqs := make([]*networkv1.AddRequest, pods)
	for i := range reqs {
		reqs[i] = addRequest(randomName("pod-"), newNetns(t), net.subnet.String())
	}
	errs := make(chan error, pods)
	ips := make(chan string, pods)
	for _, req := range reqs {
		go func() {
			res, err := client.Add(ctx, req)
			if err == nil {
				ips <- res.GetIps()[0].GetAddress()
			}
			errs <- err
		}()
	}
	for range pods {
		if err := <-errs; err != nil {
			t.Errorf("concurrent Add: %v", err)
		}
	}
	close(ips)
	seen := map[string]bool{}
	for ip := range ips {
		if seen[ip] {
			t.Errorf("address %s given twice", ip)
		}
		seen[ip] = true
	}
	if files := net.ipFiles(t); len(files) != pods || len(net.bridgePorts(t)) != pods {
		t.Errorf("host-local holds %v and the bridge has ports %v; want %d of each", files, net.bridgePorts(t), pods)
	}
	gc, err := client.GC(ctx, &networkv1.GCRequest{Node: testNode})
	if err != nil || len(gc.GetRemoved()) != pods {
		t.Errorf("GC = %v, %v; want all %d removed", gc, err, pods)
	}
	if files := net.ipFiles(t); len(files) != 0 {
		t.Errorf("host-local holds %v after GC", files)
	}
}
