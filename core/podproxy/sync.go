package podproxy

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// notListedRetry is how soon a pod is looked at again while the backend
// has not been listed yet: until then the agent does not know what runs.
const notListedRetry = 200 * time.Millisecond

// Sync brings one pod's two sides together: the pod object on the API
// server, and what the backend runs of it. It returns how soon to look at
// the pod again, if it waits for something.
func (c *Proxy) Sync(ctx context.Context, uid types.UID, pod *corev1.Pod) (time.Duration, error) {
	if !c.state.listed() {
		c.keepUnreachable(pod)
		return notListedRetry, nil
	}
	backend, inBackend := c.state.get(uid)
	switch {
	case pod == nil && !inBackend:
		c.forget(uid)
		return 0, nil
	case pod == nil:
		// Gone from the API server without us (force-deleted, or deleted
		// while the agent was down): nothing may keep running.
		return 0, c.deleteOrphan(ctx, uid, backend)
	case pod.DeletionTimestamp != nil:
		return 0, c.syncDeleted(ctx, pod, backend, inBackend)
	case isTerminal(pod):
		// Final: nothing is handed over again, nothing written over it.
		c.objects.Release(uid)
		return 0, nil
	case c.isLost(uid) || (inBackend && backend.Lost) || (!inBackend && ranOnBackend(pod)):
		// Lost while watched, or gone while nobody watched (the agent or
		// the plugin down): either way it is reported, never made again.
		return 0, c.markLost(ctx, pod)
	}
	return 0, c.syncRunning(ctx, pod, backend, inBackend)
}

// syncRunning hands the pod over unless the backend runs it as it is now,
// then reports the backend's status.
func (c *Proxy) syncRunning(ctx context.Context, pod *corev1.Pod, backend *runtimev1.PodStatus, inBackend bool) error {
	deps, err := c.readDependencies(ctx, pod)
	var missing *missingObjectError
	switch {
	case errors.As(err, &missing) && !inBackend:
		// The pod waits for it; the object's watch re-queues it when it appears.
		c.status.Set(pod, waitingStatus(pod, ReasonConfigError, missing.Error()))
		return nil
	case errors.As(err, &missing):
		// It runs already: it keeps running, and is handed over again once
		// the object is back.
		c.log.Debug("a proxied pod's object is missing", "pod", pod.Namespace+"/"+pod.Name, "err", err)
		c.report(ctx, pod, backend)
		return nil
	case err != nil:
		return err
	}
	sum := fingerprint(pod, deps)
	if inBackend && c.handedOver(pod.UID) == sum {
		c.report(ctx, pod, backend)
		return nil
	}
	st, err := c.createPod(ctx, pod, deps)
	if err != nil {
		if ctx.Err() != nil {
			return nil // the agent is stopping
		}
		msg := backendMessage(err)
		if inBackend {
			c.events.Eventf(pod, corev1.EventTypeWarning, EventFailedUpdate, "Failed to update the pod on node %s's backend: %s", c.node, msg)
			c.report(ctx, pod, backend)
		} else {
			c.events.Eventf(pod, corev1.EventTypeWarning, EventFailedCreate, "Failed to create the pod on node %s's backend: %s", c.node, msg)
			c.status.Set(pod, waitingStatus(pod, ReasonProviderFailed, msg))
		}
		return err
	}
	c.mu.Lock()
	c.handed[pod.UID] = sum
	c.mu.Unlock()
	if st.GetPod().GetUid() == string(pod.UID) {
		c.state.set(st)
	}
	c.report(ctx, pod, st)
	return nil
}

// createPod hands the pod and its objects over to the backend and returns
// the status it answers with.
func (c *Proxy) createPod(ctx context.Context, pod *corev1.Pod, deps *dependencies) (*runtimev1.PodStatus, error) {
	podBytes, cms, secrets, err := encode(pod, deps)
	if err != nil {
		return nil, err
	}
	st, err := c.backend.CreatePod(ctx, &runtimev1.CreatePodRequest{
		Node: c.node, PodObject: podBytes, ConfigMaps: cms, Secrets: secrets,
	})
	if err != nil {
		return nil, fmt.Errorf("create pod %s/%s on the backend: %w", pod.Namespace, pod.Name, err)
	}
	return st, nil
}

// report writes the backend's status of the pod, as the hub sees it.
func (c *Proxy) report(ctx context.Context, pod *corev1.Pod, backend *runtimev1.PodStatus) {
	if backend == nil || len(backend.Status) == 0 {
		return // nothing observed yet
	}
	observed, err := decodeStatus(backend.Status)
	if err != nil {
		c.log.Error("status of a proxied pod", "pod", pod.Namespace+"/"+pod.Name, "err", err)
		return
	}
	st := hubStatus(pod, observed, c.nodeAddress(ctx))
	c.mu.Lock()
	c.reported[pod.UID] = st
	c.mu.Unlock()
	st = st.DeepCopy()
	c.markUnreachable(st)
	c.status.Set(pod, st)
}

// keepUnreachable marks the last status of a pod written before the agent
// could list an unreachable backend (it started, or its plugin restarted,
// during the outage).
func (c *Proxy) keepUnreachable(pod *corev1.Pod) {
	if pod == nil || pod.DeletionTimestamp != nil || isTerminal(pod) {
		return
	}
	if st := pod.Status.DeepCopy(); c.markUnreachable(st) {
		c.status.Set(pod, st)
	}
}

// markLost fails a pod its backend lost, synchronously, so that it is
// never handed over again, not even by an agent restarted meanwhile.
func (c *Proxy) markLost(ctx context.Context, pod *corev1.Pod) error {
	c.mu.Lock()
	first := !c.lost[pod.UID]
	c.lost[pod.UID] = true
	last := c.reported[pod.UID]
	c.mu.Unlock()
	st := lostStatus(pod, last, c.node)
	if first {
		c.events.Event(pod, corev1.EventTypeWarning, ReasonPodLost, st.Message)
	}
	if err := c.status.Write(ctx, pod, st); err != nil {
		return fmt.Errorf("fail lost pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	c.objects.Release(pod.UID)
	return nil
}

// ranOnBackend says whether the backend has run the pod: its status holds a
// start time, which only the backend's status gives (the hub has no kubelet
// of its own for the pod).
func ranOnBackend(pod *corev1.Pod) bool {
	return pod.Status.StartTime != nil
}

func (c *Proxy) handedOver(uid types.UID) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.handed[uid]
}

func (c *Proxy) isLost(uid types.UID) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lost[uid]
}

// backendMessage is what the backend said of a failed call, without what
// the agent wrapped around it.
func backendMessage(err error) string {
	var se interface{ GRPCStatus() *status.Status }
	if errors.As(err, &se) {
		return se.GRPCStatus().Message()
	}
	return err.Error()
}
