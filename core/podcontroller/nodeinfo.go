package podcontroller

import (
	"context"
	"log/slog"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// describeTimeout bounds one GetNode.
const describeTimeout = 5 * time.Second

// NodeInfo is what the runtime says of the node (GetNode): its InternalIP,
// for pods' hostIP, and its allocatable resources, for the limits a
// container did not set. It is asked until it answers, at most every retry.
type NodeInfo struct {
	runtime runtimev1.RuntimeClient
	node    string
	retry   time.Duration
	log     *slog.Logger

	mu          sync.Mutex
	asked       time.Time
	address     string
	allocatable corev1.ResourceList
}

func newNodeInfo(runtime runtimev1.RuntimeClient, node string, retry time.Duration, log *slog.Logger) *NodeInfo {
	return &NodeInfo{runtime: runtime, node: node, retry: retry, log: log}
}

// KnownNode is a NodeInfo that never asks: for unit tests of what uses it.
func KnownNode(address string, allocatable corev1.ResourceList) *NodeInfo {
	return &NodeInfo{address: address, allocatable: allocatable}
}

// Address is the node's InternalIP; empty until the runtime has said.
func (n *NodeInfo) Address(ctx context.Context) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.address == "" {
		n.describe(ctx)
	}
	return n.address
}

// Allocatable is the node's allocatable resources; nil until the runtime
// has said.
func (n *NodeInfo) Allocatable(ctx context.Context) corev1.ResourceList {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.allocatable == nil {
		n.describe(ctx)
	}
	return n.allocatable
}

// describe asks the runtime; called with mu held.
func (n *NodeInfo) describe(ctx context.Context) {
	if n.runtime == nil || time.Since(n.asked) < n.retry {
		return
	}
	n.asked = time.Now()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), describeTimeout)
	defer cancel()
	node, err := n.runtime.GetNode(ctx, &runtimev1.GetNodeRequest{Node: n.node})
	if err != nil {
		n.log.Warn("describe the node through the runtime", "err", err)
		return
	}
	for _, a := range node.Addresses {
		if a.Type == string(corev1.NodeInternalIP) {
			n.address = a.Address
		}
	}
	allocatable := corev1.ResourceList{}
	for name, value := range node.Allocatable {
		if q, err := resource.ParseQuantity(value); err == nil {
			allocatable[corev1.ResourceName(name)] = q
		}
	}
	n.allocatable = allocatable
}
