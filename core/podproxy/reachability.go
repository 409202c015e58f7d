package podproxy

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ConditionBackendReachable is the pod condition the agent adds, False,
// while the node's backend cannot be observed (a member cluster whose API
// server does not answer): the pod keeps its last status, which may be
// out of date, and this says why. It goes when the backend answers again.
const ConditionBackendReachable corev1.PodConditionType = "fedlet.io/BackendReachable"

// reachability is whether the backend can be observed, as the node's
// Ready condition last said.
type reachability struct {
	reachable       bool
	reason, message string
	since           metav1.Time
}

// BackendReachable tells the controller whether the node's backend can be
// observed now, and why not. When that changes every pod is looked at
// again: their statuses get, or lose, ConditionBackendReachable.
func (c *Proxy) BackendReachable(reachable bool, reason, message string) {
	c.mu.Lock()
	old := c.reach
	c.reach = reachability{reachable: reachable, reason: reason, message: message, since: old.since}
	changed := old.reachable != reachable || old.reason != reason
	if changed {
		c.reach.since = metav1.NewTime(time.Now().Truncate(time.Second))
	}
	c.mu.Unlock()
	if !changed {
		return
	}
	if reachable {
		c.log.Info("backend reachable again")
	} else {
		c.log.Warn("backend unreachable: pods keep their last status", "reason", reason, "message", message)
	}
	c.ctrl.EnqueueAll()
}

// markUnreachable adds ConditionBackendReachable to st while the backend
// cannot be observed, with the pod and its containers not ready (as the
// node lifecycle controller marks the pods of a node gone Unknown); it
// reports whether it did.
func (c *Proxy) markUnreachable(st *corev1.PodStatus) bool {
	c.mu.Lock()
	reach := c.reach
	c.mu.Unlock()
	if reach.reachable {
		return false
	}
	setCondition(st, corev1.PodCondition{
		Type: ConditionBackendReachable, Status: corev1.ConditionFalse,
		Reason: reach.reason, Message: reach.message, LastTransitionTime: reach.since,
	})
	for _, t := range []corev1.PodConditionType{corev1.ContainersReady, corev1.PodReady} {
		setCondition(st, corev1.PodCondition{Type: t, Status: corev1.ConditionFalse, Reason: reach.reason, LastTransitionTime: reach.since})
	}
	return true
}

// setCondition replaces the condition of cond's type, keeping its
// transition time when its status is the same, or appends cond.
func setCondition(st *corev1.PodStatus, cond corev1.PodCondition) {
	if old := findCondition(st.Conditions, cond.Type); old != nil {
		if old.Status == cond.Status {
			cond.LastTransitionTime = old.LastTransitionTime
		}
		*old = cond
		return
	}
	st.Conditions = append(st.Conditions, cond)
}
