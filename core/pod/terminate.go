package pod

import (
	"context"
	"log/slog"
	"math"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/fedlet/fedlet/core/podstatus"
	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// terminations stop deleted pods: their containers, their sandbox, then the
// pod object. Each runs beside the workers, so that long grace periods do not
// hold them up; wait waits for them.
type terminations struct {
	client   kubernetes.Interface
	stopper  *containerStopper
	messages *terminationMessages
	statuses *statusGenerator
	status   *podstatus.Manager
	state    *runtimeState
	log      *slog.Logger
	// removeSandbox removes the pod's sandbox and forgets it; retry syncs
	// the pod again after its back-off.
	removeSandbox func(ctx context.Context, uid types.UID) error
	retry         func(uid types.UID)

	mu sync.Mutex
	// terminating holds pods whose containers are being stopped.
	terminating map[types.UID]bool
	// stopping keeps new terminations from starting once wait has begun.
	stopping bool
	tasks    sync.WaitGroup
}

// start stops a deleted pod's containers within its grace period,
// removes its sandbox and then the pod object, as the kubelet does. It runs
// beside the workers so that long grace periods do not hold them up.
func (c *terminations) start(ctx context.Context, pod *corev1.Pod, rt *podRuntime) {
	c.mu.Lock()
	if c.terminating[pod.UID] || c.stopping {
		c.mu.Unlock()
		return
	}
	c.terminating[pod.UID] = true
	c.tasks.Add(1)
	c.mu.Unlock()

	go func() {
		defer c.tasks.Done()
		if err := c.terminate(ctx, pod, rt); err != nil {
			c.log.Error("terminate pod", "pod", pod.Namespace+"/"+pod.Name, "err", err)
			c.mu.Lock()
			delete(c.terminating, pod.UID)
			c.mu.Unlock()
			c.retry(pod.UID)
		}
	}()
}

func (c *terminations) terminate(ctx context.Context, pod *corev1.Pod, rt *podRuntime) error {
	grace := remainingGrace(pod)
	ctrs := allContainers(pod)
	var wg sync.WaitGroup
	errs := make(chan error, len(ctrs))
	for _, ctr := range ctrs {
		last := rt.latest(ctr.Name)
		if last == nil || last.State == runtimev1.ContainerState_CONTAINER_STATE_EXITED {
			continue
		}
		wg.Go(func() {
			if _, err := c.stopper.stop(ctx, pod, &ctr, last.Id, grace, ""); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	c.messages.read(ctx, pod, c.state.get(pod.UID))
	if err := c.status.Write(ctx, pod, c.statuses.compute(pod, c.state.get(pod.UID))); err != nil {
		return err
	}
	if err := c.removeSandbox(ctx, pod.UID); err != nil {
		return err
	}
	zero := int64(0)
	err := c.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
		GracePeriodSeconds: &zero,
		Preconditions:      &metav1.Preconditions{UID: &pod.UID},
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return err
	}
	return nil
}

// wait keeps new terminations from starting and waits for those under way.
func (c *terminations) wait() {
	c.mu.Lock()
	c.stopping = true
	c.mu.Unlock()
	c.tasks.Wait()
}

// forget drops the pod's mark once its object is gone: until then, the
// syncs its last status and its deletion cause must not terminate it again.
func (c *terminations) forget(uid types.UID, gone bool) {
	if !gone {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.terminating, uid)
}

// remainingGrace is what is left of the grace period the deletion asked for:
// an agent restarted mid-termination does not start the grace period again.
func remainingGrace(pod *corev1.Pod) int64 {
	if pod.DeletionTimestamp == nil {
		return 0
	}
	left := time.Until(pod.DeletionTimestamp.Time).Seconds()
	if left <= 0 {
		return 0
	}
	return int64(math.Ceil(left))
}
