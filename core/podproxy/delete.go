package podproxy

import (
	"context"
	"fmt"
	"math"
	"time"

	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// minGrace is the shortest grace period a pod that still exists on the hub
// is deleted with: 0 would ask a member's API server to forget the pod at
// once, before its kubelet has stopped it.
const minGrace = 1

// syncDeleted deletes a deleted pod on the backend with what is left of its
// grace period, and, once the backend no longer has it, writes its final
// status and deletes the pod object, as the kubelet does.
func (c *Proxy) syncDeleted(ctx context.Context, pod *corev1.Pod, backend *runtimev1.PodStatus, inBackend bool) error {
	if !inBackend || backend.Lost {
		c.mu.Lock()
		last := c.reported[pod.UID]
		c.mu.Unlock()
		if !isTerminal(pod) { // a terminal status is final already (a lost pod's says why)
			final := finalStatus(pod, last)
			if c.isLost(pod.UID) {
				final = lostStatus(pod, last, c.node)
			}
			if err := c.status.Write(ctx, pod, final); err != nil {
				return fmt.Errorf("final status of pod %s/%s: %w", pod.Namespace, pod.Name, err)
			}
		}
		if err := c.deletePodObject(ctx, pod); err != nil {
			return err
		}
		c.forget(pod.UID)
		return nil
	}
	c.report(ctx, pod, backend) // its containers stopping
	if _, sent := c.deletionSent(pod.UID); sent {
		return nil
	}
	grace := deletionGrace(pod, time.Now())
	_, err := c.backend.DeletePod(ctx, &runtimev1.DeletePodRequest{
		Node: c.node, Pod: podRef(pod), GracePeriodSeconds: grace,
	})
	if err != nil {
		if ctx.Err() == nil {
			c.events.Eventf(pod, corev1.EventTypeWarning, EventFailedKillPod, "error killing pod: the backend of node %s: %s", c.node, status.Convert(err).Message())
		}
		return fmt.Errorf("delete pod %s/%s on the backend: %w", pod.Namespace, pod.Name, err)
	}
	c.mu.Lock()
	c.deleting[pod.UID] = grace
	c.mu.Unlock()
	return nil
}

// deleteOrphan deletes at once, on the backend, a pod gone from the API
// server: its grace period is over, whoever ended it. It is forgotten once
// a listing no longer has it.
func (c *Proxy) deleteOrphan(ctx context.Context, uid types.UID, backend *runtimev1.PodStatus) error {
	if backend.Lost {
		c.forget(uid)
		return nil
	}
	if grace, sent := c.deletionSent(uid); sent && grace == 0 {
		return nil // a deletion with a grace period left is cut short, once
	}
	ref := backend.GetPod()
	if ref == nil {
		ref = &runtimev1.PodRef{Uid: string(uid)}
	}
	_, err := c.backend.DeletePod(ctx, &runtimev1.DeletePodRequest{Node: c.node, Pod: ref, GracePeriodSeconds: 0})
	if err != nil {
		return fmt.Errorf("delete pod %s/%s (%s), gone from the API server, on the backend: %w", ref.Namespace, ref.Name, uid, err)
	}
	c.log.Info("deleted on the backend a pod gone from the API server", "pod", ref.Namespace+"/"+ref.Name, "uid", uid)
	c.mu.Lock()
	c.deleting[uid] = 0
	c.mu.Unlock()
	return nil
}

// deletePodObject deletes the pod object now that nothing of it runs; the
// UID precondition spares a pod recreated under the same name.
func (c *Proxy) deletePodObject(ctx context.Context, pod *corev1.Pod) error {
	zero := int64(0)
	err := c.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
		GracePeriodSeconds: &zero,
		Preconditions:      &metav1.Preconditions{UID: &pod.UID},
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("delete pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	return nil
}

// deletionGrace is what is left at now of the grace period the deletion
// asked for (the deletion timestamp is when it ends), so that a restarted
// agent does not start it over; never more than the period itself (the
// agent's clock may be behind the API server's), never less than minGrace.
func deletionGrace(pod *corev1.Pod, now time.Time) int64 {
	if pod.DeletionTimestamp == nil {
		return minGrace
	}
	left := int64(math.Ceil(pod.DeletionTimestamp.Sub(now).Seconds()))
	if p := pod.DeletionGracePeriodSeconds; p != nil && left > *p {
		left = *p
	}
	return max(left, minGrace)
}

// deletionSent says whether the backend has accepted the pod's deletion,
// and with which grace period.
func (c *Proxy) deletionSent(uid types.UID) (int64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	grace, ok := c.deleting[uid]
	return grace, ok
}

func podRef(pod *corev1.Pod) *runtimev1.PodRef {
	return &runtimev1.PodRef{Uid: string(pod.UID), Namespace: pod.Namespace, Name: pod.Name}
}
