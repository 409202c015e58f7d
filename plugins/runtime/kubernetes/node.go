package kubernetes

import (
	"context"
	"fmt"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	resourcehelper "k8s.io/component-helpers/resource"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// syncWait bounds how long GetNode waits for a member's first listing (or
// first probe) before it answers not ready.
const syncWait = 3 * time.Second

// GetNode reports the member as one big node: the sum of its schedulable
// nodes, less what pods other than this node's own take there (the hub's
// scheduler counts those itself). It reads the informers' caches and the
// last health probe, so it costs no call to the member.
func (b *Backend) GetNode(ctx context.Context, req *runtimev1.GetNodeRequest) (*runtimev1.Node, error) {
	m, err := b.memberFor(req.GetNode())
	if err != nil {
		return nil, err
	}
	return m.node(ctx), nil
}

func (m *member) node(ctx context.Context) *runtimev1.Node {
	wctx, cancel := context.WithTimeout(ctx, syncWait)
	defer cancel()
	m.health.waitProbed(wctx)
	probed, version, reason, message := m.health.get()
	n := &runtimev1.Node{Capacity: map[string]string{}, Allocatable: map[string]string{}}
	if version != "" {
		n.ContainerRuntimeVersion = "kubernetes://" + version
	}
	switch {
	case !probed:
		n.Reason, n.Message = ReasonUnreachable, fmt.Sprintf("the member API server at %s has not answered yet", m.health.host)
		n.Unobservable = true
		return n
	case reason != "":
		// A member that answers but refuses us is observed: not ready.
		n.Reason, n.Message = reason, message
		n.Unobservable = reason == ReasonUnreachable
		return n
	}
	if !m.waitSynced(wctx) {
		n.Reason, n.Message = ReasonSyncing, fmt.Sprintf("listing the nodes and pods of the member at %s", m.health.host)
		return n
	}

	capacity, counted, info := m.capacity()
	used := m.used(counted)
	for name, q := range capacity {
		n.Capacity[string(name)] = q.String()
		left := q.DeepCopy()
		if u, ok := used[name]; ok {
			left.Sub(u)
		}
		if left.Sign() < 0 {
			left = *resource.NewQuantity(0, q.Format)
		}
		n.Allocatable[string(name)] = left.String()
	}
	n.OperatingSystem = info.OperatingSystem
	n.Architecture = info.Architecture
	n.KernelVersion = info.KernelVersion
	n.OsImage = info.OSImage
	n.Ready = true
	n.Reason = ReasonReady
	n.Message = fmt.Sprintf("member %s (%s) has %d schedulable nodes", m.health.host, version, len(counted))
	return n
}

// nodeResources are the resources a member node adds to the virtual node.
var nodeResources = []corev1.ResourceName{
	corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourcePods, corev1.ResourceEphemeralStorage,
}

// capacity sums the allocatable of the member's schedulable nodes (Ready,
// not cordoned) and returns their names and the nodeInfo of the first one
// by name.
func (m *member) capacity() (corev1.ResourceList, map[string]bool, corev1.NodeSystemInfo) {
	total := corev1.ResourceList{}
	for _, r := range nodeResources {
		total[r] = *resource.NewQuantity(0, formatOf(r))
	}
	counted := map[string]bool{}
	var names []string
	infos := map[string]corev1.NodeSystemInfo{}
	for _, obj := range m.nodes.GetStore().List() {
		node, ok := obj.(*corev1.Node)
		if !ok || !schedulable(node) {
			continue
		}
		counted[node.Name] = true
		names = append(names, node.Name)
		infos[node.Name] = node.Status.NodeInfo
		for _, r := range nodeResources {
			if q, ok := node.Status.Allocatable[r]; ok {
				sum := total[r]
				sum.Add(q)
				total[r] = sum
			}
		}
	}
	sort.Strings(names)
	var info corev1.NodeSystemInfo
	if len(names) > 0 {
		info = infos[names[0]]
	}
	return total, counted, info
}

// schedulable says whether the member's scheduler may put pods on node.
func schedulable(node *corev1.Node) bool {
	if node.Spec.Unschedulable {
		return false
	}
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// used sums the requests of the pods bound to the counted nodes that are
// not this virtual node's own, with one pod each.
func (m *member) used(counted map[string]bool) corev1.ResourceList {
	used := corev1.ResourceList{}
	pods := int64(0)
	for _, obj := range m.load.GetStore().List() {
		pod, ok := obj.(*corev1.Pod)
		if !ok || !counted[pod.Spec.NodeName] || m.owns(pod) {
			continue
		}
		pods++
		if len(pod.Spec.Containers) == 0 {
			continue
		}
		for name, q := range pod.Spec.Containers[0].Resources.Requests {
			sum, ok := used[name]
			if !ok {
				sum = *resource.NewQuantity(0, q.Format)
			}
			sum.Add(q)
			used[name] = sum
		}
	}
	used[corev1.ResourcePods] = *resource.NewQuantity(pods, resource.DecimalSI)
	return used
}

// owns says whether a member object is this virtual node's.
func (m *member) owns(obj metav1.Object) bool {
	l := obj.GetLabels()
	return l[LabelOriginCluster] == m.origin && l[LabelNode] == m.cfg.Node
}

func formatOf(r corev1.ResourceName) resource.Format {
	switch r {
	case corev1.ResourceMemory, corev1.ResourceEphemeralStorage:
		return resource.BinarySI
	}
	return resource.DecimalSI
}

// podLoad reduces a pod of the load informer to what GetNode reads: its
// identity labels, its node, and its requests as the scheduler counts
// them (init containers, sidecars and overhead included), kept as the
// requests of one container. A member with thousands of pods then costs
// little memory, and GetNode no arithmetic per container.
func podLoad(obj any) (any, error) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil
	}
	requests := resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{})
	keep := map[string]string{}
	for _, k := range []string{LabelOriginCluster, LabelNode} {
		if v, ok := pod.Labels[k]; ok {
			keep[k] = v
		}
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:            pod.Name,
			Namespace:       pod.Namespace,
			UID:             pod.UID,
			ResourceVersion: pod.ResourceVersion,
			Labels:          keep,
		},
		Spec: corev1.PodSpec{
			NodeName:   pod.Spec.NodeName,
			Containers: []corev1.Container{{Name: "requests", Resources: corev1.ResourceRequirements{Requests: requests}}},
		},
		Status: corev1.PodStatus{Phase: pod.Status.Phase},
	}, nil
}
