package pod

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"

	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"

	"github.com/fedlet/fedlet/core/podcontroller"

	networkv1 "github.com/fedlet/fedlet/plugins/proto/network/v1"
	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// podIfname is the pod's interface in its network namespace, as CNI names it.
const podIfname = "eth0"

// podNetwork attaches the pods' sandboxes to the node's network through a
// network plugin: the kubelet's sandbox → network step. The attachment of
// a pod is (its UID, eth0), so a restarted agent asks again with Add and
// gets the same addresses back.
type podNetwork struct {
	client networkv1.NetworkClient
	node   string
	kube   kubernetes.Interface // reads the Node's pod CIDRs
	pods   *podcontroller.Controller
	state  *runtimeState
	// waiting and events say why a pod waits for its network.
	waiting *waitReasons
	events  record.EventRecorder
	log     *slog.Logger
	// configuredCIDR is the node's pod CIDR from the config, used when the
	// Node has none (no controller-manager allocating them).
	configuredCIDR string

	mu       sync.Mutex
	podCIDRs []string               // the Node's, once known (they never change)
	ips      map[types.UID][]string // each attached pod's addresses
	released map[types.UID]bool     // finished pods already detached
}

// newPodNetwork readies n, whose fields but its state are set, and returns
// it; nil for a node without a network plugin (n.client nil).
func newPodNetwork(n *podNetwork) *podNetwork {
	if n.client == nil {
		return nil
	}
	n.ips, n.released = map[types.UID][]string{}, map[types.UID]bool{}
	return n
}

// attach gives the pod's sandbox its network if it has none yet
// known to this agent. Host-network pods keep the host's.
func (n *podNetwork) attach(ctx context.Context, pod *corev1.Pod) error {
	if n == nil || pod.Spec.HostNetwork {
		return nil
	}
	sb := n.state.get(pod.UID).sandboxOrNil()
	if sb == nil || sb.GetNetnsPath() == "" || len(n.podIPs(pod.UID)) > 0 {
		return nil
	}
	err := n.add(ctx, pod, sb)
	if err != nil && ctx.Err() == nil {
		msg := status.Convert(err).Message()
		n.events.Eventf(pod, corev1.EventTypeWarning, "FailedCreatePodSandBox", "Failed to create pod sandbox: network: %s", msg)
		for _, ctr := range allContainers(pod) {
			n.waiting.set(pod.UID, ctr.Name, &waitReason{"ContainerCreating", "attach the pod's network: " + msg})
		}
	}
	return err
}

func (n *podNetwork) add(ctx context.Context, pod *corev1.Pod, sb *runtimev1.Sandbox) error {
	cidrs, err := n.cidrs(ctx)
	if err != nil {
		return err
	}
	req := &networkv1.AddRequest{
		Node:         n.node,
		Attachment:   &networkv1.Attachment{ContainerId: string(pod.UID), Ifname: podIfname},
		NetnsPath:    sb.GetNetnsPath(),
		Pod:          &networkv1.PodRef{Uid: string(pod.UID), Namespace: pod.Namespace, Name: pod.Name},
		PortMappings: portMappings(pod),
	}
	for _, cidr := range cidrs {
		req.IpRanges = append(req.IpRanges, &networkv1.IPRangeSet{Ranges: []*networkv1.IPRange{{Subnet: cidr}}})
	}
	res, err := n.client.Add(ctx, req)
	if err != nil {
		return fmt.Errorf("attach network of pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	var ips []string
	for _, ipc := range res.GetIps() {
		if ip, _, err := net.ParseCIDR(ipc.GetAddress()); err == nil {
			ips = append(ips, ip.String())
		}
	}
	if len(ips) == 0 {
		return fmt.Errorf("attach network of pod %s/%s: the network plugin gave no IP address", pod.Namespace, pod.Name)
	}
	// IPv4 first, as the kubelet orders podIPs.
	slices.SortStableFunc(ips, func(a, b string) int {
		return boolToInt(strings.Contains(a, ":")) - boolToInt(strings.Contains(b, ":"))
	})
	n.mu.Lock()
	n.ips[pod.UID] = ips
	n.mu.Unlock()
	n.log.Info("pod network attached", "pod", pod.Namespace+"/"+pod.Name, "ips", ips)
	return nil
}

// detach frees what the pod's attachment holds; the sandbox's
// network namespace still exists, so the CNI plugins find their interfaces.
func (n *podNetwork) detach(ctx context.Context, uid types.UID) error {
	if n == nil {
		return nil
	}
	sb := n.state.get(uid).sandboxOrNil()
	if sb != nil && sb.GetHostNetwork() {
		return nil
	}
	req := &networkv1.DelRequest{
		Node:       n.node,
		Attachment: &networkv1.Attachment{ContainerId: string(uid), Ifname: podIfname},
		NetnsPath:  sb.GetNetnsPath(),
		Pod:        &networkv1.PodRef{Uid: string(uid)},
	}
	if p := n.pods.PodByUID(uid); p != nil {
		req.Pod.Namespace, req.Pod.Name = p.Namespace, p.Name
	}
	if _, err := n.client.Del(ctx, req); err != nil {
		return fmt.Errorf("detach network of pod %s: %w", uid, err)
	}
	n.mu.Lock()
	delete(n.ips, uid)
	n.mu.Unlock()
	return nil
}

// release detaches a finished pod once; its status keeps the IP it
// had, as the kubelet's does.
func (n *podNetwork) release(ctx context.Context, pod *corev1.Pod) error {
	if n == nil || pod.Spec.HostNetwork {
		return nil
	}
	n.mu.Lock()
	done := n.released[pod.UID]
	n.mu.Unlock()
	if done {
		return nil
	}
	if err := n.detach(ctx, pod.UID); err != nil {
		return err
	}
	n.mu.Lock()
	n.released[pod.UID] = true
	n.mu.Unlock()
	return nil
}

// collectGarbage has the plugin remove every attachment of the node
// that belongs to no pod the agent knows: those of pods deleted while the
// agent was down, or whose Del a crash cut short. Pods being created are in
// the informer, so an attachment in the making is never taken.
func (n *podNetwork) collectGarbage(ctx context.Context, sandboxes []*runtimev1.SandboxStatus) {
	if n == nil {
		return
	}
	keep := map[string]bool{}
	for _, sb := range sandboxes {
		keep[sb.GetSandbox().GetPod().GetUid()] = true
	}
	for _, p := range n.pods.Pods() {
		keep[string(p.UID)] = true
	}
	req := &networkv1.GCRequest{Node: n.node}
	for uid := range keep {
		req.ValidAttachments = append(req.ValidAttachments, &networkv1.Attachment{ContainerId: uid, Ifname: podIfname})
	}
	resp, err := n.client.GC(ctx, req)
	if err != nil {
		n.log.Warn("collect network garbage", "err", err)
		return
	}
	for _, a := range resp.GetRemoved() {
		n.log.Info("stale pod network removed", "uid", a.GetContainerId())
	}
}

// podIPs are the pod's addresses, IPv4 first; none if not attached.
func (n *podNetwork) podIPs(uid types.UID) []string {
	if n == nil {
		return nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.ips[uid]
}

func (n *podNetwork) forget(uid types.UID) {
	if n == nil {
		return
	}
	n.mu.Lock()
	delete(n.ips, uid)
	delete(n.released, uid)
	n.mu.Unlock()
}

// cidrs are the node's pod CIDRs: the Node's spec.podCIDRs, allocated by
// the controller-manager, or else the configured one.
func (n *podNetwork) cidrs(ctx context.Context) ([]string, error) {
	n.mu.Lock()
	known := n.podCIDRs
	n.mu.Unlock()
	if len(known) > 0 {
		return known, nil
	}
	node, err := n.kube.CoreV1().Nodes().Get(ctx, n.node, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("read the node's pod CIDR: %w", err)
	}
	cidrs := node.Spec.PodCIDRs
	if len(cidrs) == 0 && node.Spec.PodCIDR != "" {
		cidrs = []string{node.Spec.PodCIDR}
	}
	if len(cidrs) == 0 {
		if n.configuredCIDR == "" {
			return nil, fmt.Errorf("node %s has no pod CIDR: spec.podCIDR is unset (is the controller-manager allocating node CIDRs?) and nodes[].podCIDR is not configured", n.node)
		}
		return []string{n.configuredCIDR}, nil // not kept: the Node's may come
	}
	n.mu.Lock()
	n.podCIDRs = cidrs
	n.mu.Unlock()
	return cidrs, nil
}

// portMappings are the pod's hostPorts, for the network's portmap.
func portMappings(pod *corev1.Pod) []*networkv1.PortMapping {
	var out []*networkv1.PortMapping
	for _, ctr := range pod.Spec.Containers {
		for _, p := range ctr.Ports {
			if p.HostPort == 0 {
				continue
			}
			out = append(out, &networkv1.PortMapping{
				HostPort:      p.HostPort,
				ContainerPort: p.ContainerPort,
				Protocol:      strings.ToLower(string(nonEmptyProtocol(p.Protocol))),
				HostIp:        p.HostIP,
			})
		}
	}
	return out
}

func nonEmptyProtocol(p corev1.Protocol) corev1.Protocol {
	if p == "" {
		return corev1.ProtocolTCP
	}
	return p
}

func boolToInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
