package node

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// ConditionRuntimePlugin reports whether the node's runtime plugin process is up.
const ConditionRuntimePlugin corev1.NodeConditionType = "RuntimePluginReady"

// ConditionNetwork reports whether the node's network plugin can attach
// pods; only nodes with a network plugin have it.
const ConditionNetwork corev1.NodeConditionType = "NetworkReady"

const getNodeTimeout = 5 * time.Second

// observe asks the backend for the node's state and turns it into a NodeStatus.
func (c *Controller) observe(ctx context.Context) *corev1.NodeStatus {
	st := &corev1.NodeStatus{
		DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: c.cfg.NodeAPIPort}},
		NodeInfo:        corev1.NodeSystemInfo{KubeletVersion: c.cfg.AgentVersion},
	}
	up, reason, message := c.backend.State()
	var info *runtimev1.Node
	if up {
		callCtx, cancel := context.WithTimeout(ctx, getNodeTimeout)
		var err error
		info, err = c.backend.Client().GetNode(callCtx, &runtimev1.GetNodeRequest{Node: c.cfg.Name})
		cancel()
		if err != nil {
			info, reason, message = nil, "RuntimeUnavailable", fmt.Sprintf("get node from runtime plugin: %v", err)
		}
	}
	plugin := condition(ConditionRuntimePlugin, up, "PluginRunning", "the runtime plugin process is serving", reason, message)
	ready := condition(corev1.NodeReady, info != nil && info.Ready, "KubeletReady", "fedlet is posting ready status", reason, message)
	if info != nil {
		fillFromRuntime(st, info)
		if len(st.Addresses) == 0 && c.cfg.AgentAddress != "" {
			st.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: c.cfg.AgentAddress}}
		}
		if !info.Ready {
			ready = condition(corev1.NodeReady, false, "", "", nonEmpty(info.Reason, "RuntimeNotReady"), info.Message)
		}
		if info.Unobservable {
			// As for a kubelet that stopped posting: the node lifecycle
			// controller taints the node unreachable and marks its pods.
			ready.Status = corev1.ConditionUnknown
		}
	}
	st.Conditions = []corev1.NodeCondition{
		ready, plugin,
		noPressure(corev1.NodeMemoryPressure, "KubeletHasSufficientMemory"),
		noPressure(corev1.NodeDiskPressure, "KubeletHasNoDiskPressure"),
		noPressure(corev1.NodePIDPressure, "KubeletHasSufficientPID"),
	}
	if nr, ok := c.backend.(NetworkReporter); ok {
		if configured, netReady, reason, message := nr.NetworkState(ctx, c.cfg.Name); configured {
			st.Conditions = append(st.Conditions, condition(ConditionNetwork, netReady, "NetworkPluginReady", "the network plugin can attach pods", reason, message))
			if !netReady && st.Conditions[0].Status == corev1.ConditionTrue {
				// As the kubelet: a node whose pod network is not ready is not ready.
				st.Conditions[0] = condition(corev1.NodeReady, false, "", "", "NetworkPluginNotReady", "network not ready: "+reason+": "+message)
			}
		}
	}
	return st
}

func fillFromRuntime(st *corev1.NodeStatus, info *runtimev1.Node) {
	st.Capacity = resourceList(info.Capacity)
	st.Allocatable = resourceList(info.Allocatable)
	if len(st.Allocatable) == 0 {
		st.Allocatable = st.Capacity
	}
	for _, a := range info.Addresses {
		st.Addresses = append(st.Addresses, corev1.NodeAddress{Type: corev1.NodeAddressType(a.Type), Address: a.Address})
	}
	st.NodeInfo.OperatingSystem = info.OperatingSystem
	st.NodeInfo.Architecture = info.Architecture
	st.NodeInfo.KernelVersion = info.KernelVersion
	st.NodeInfo.OSImage = info.OsImage
	st.NodeInfo.ContainerRuntimeVersion = info.ContainerRuntimeVersion
}

func resourceList(in map[string]string) corev1.ResourceList {
	out := corev1.ResourceList{}
	for name, q := range in {
		if v, err := resource.ParseQuantity(q); err == nil {
			out[corev1.ResourceName(name)] = v
		}
	}
	return out
}

// condition builds a condition whose status is True when ok; the reasons
// given for each side are used accordingly.
func condition(t corev1.NodeConditionType, ok bool, okReason, okMessage, badReason, badMessage string) corev1.NodeCondition {
	c := corev1.NodeCondition{Type: t, Status: corev1.ConditionTrue, Reason: okReason, Message: okMessage}
	if !ok {
		c.Status, c.Reason, c.Message = corev1.ConditionFalse, badReason, badMessage
	}
	return c
}

// noPressure reports a pressure condition as False: fedlet does not evict
// pods under pressure, so it never claims to see any.
func noPressure(t corev1.NodeConditionType, reason string) corev1.NodeCondition {
	return corev1.NodeCondition{Type: t, Status: corev1.ConditionFalse, Reason: reason}
}

func nonEmpty(s, fallback string) string {
	if s == "" {
		return fallback
	}
	return s
}

// statusChanged compares two observations, ignoring timestamps.
func statusChanged(a, b *corev1.NodeStatus) bool {
	return !equality.Semantic.DeepEqual(a, b)
}

// writeStatus patches the Node's status, keeping transition times of
// conditions whose status did not change.
func (c *Controller) writeStatus(ctx context.Context, st *corev1.NodeStatus) error {
	current, err := c.client.CoreV1().Nodes().Get(ctx, c.cfg.Name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("get node %s: %w", c.cfg.Name, err)
	}
	now := metav1.Now()
	out := st.DeepCopy()
	for i := range out.Conditions {
		cond := &out.Conditions[i]
		cond.LastHeartbeatTime = now
		cond.LastTransitionTime = now
		for _, old := range current.Status.Conditions {
			if old.Type == cond.Type && old.Status == cond.Status {
				cond.LastTransitionTime = old.LastTransitionTime
			}
		}
	}
	patch, err := json.Marshal(map[string]any{"status": out})
	if err != nil {
		return fmt.Errorf("encode node status: %w", err)
	}
	_, err = c.client.CoreV1().Nodes().Patch(ctx, c.cfg.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "status")
	if err != nil {
		return fmt.Errorf("patch node %s status: %w", c.cfg.Name, err)
	}
	return nil
}
