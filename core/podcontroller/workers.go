package podcontroller

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
)

// enqueueObject queues the pod of an informer event. A deletion is told to
// the strategy and cancels the pod's sync in progress first, so that the
// next sync terminates the pod at once rather than after a hook or a pull.
func (c *Controller) enqueueObject(obj any) {
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	if p.DeletionTimestamp != nil {
		c.strategy.Deleting(p.UID)
		c.cancelSync(p.UID)
	}
	c.queue.Add(p.UID)
}

// processNext syncs the next pod of the queue; false once the queue is shut
// down.
func (c *Controller) processNext(ctx context.Context) bool {
	uid, quit := c.queue.Get()
	if quit {
		return false
	}
	defer c.queue.Done(uid)
	retryAfter, err := c.sync(ctx, uid)
	switch {
	case err != nil && ctx.Err() == nil:
		c.log.Error("sync "+c.what, "uid", uid, "err", err)
		c.queue.AddRateLimited(uid)
	case retryAfter > 0:
		c.queue.Forget(uid)
		c.queue.AddAfter(uid, retryAfter)
	default:
		c.queue.Forget(uid)
	}
	return true
}

// sync hands the pod to the strategy; the sync of a pod not being deleted
// ends when its deletion is seen.
func (c *Controller) sync(ctx context.Context, uid types.UID) (time.Duration, error) {
	pod := c.PodByUID(uid)
	if pod != nil && pod.DeletionTimestamp == nil {
		var done func()
		ctx, done = c.cancellable(ctx, uid)
		defer done()
	}
	return c.strategy.Sync(ctx, uid, pod)
}

// cancellable derives the context of a pod's sync that the pod's deletion
// cancels; done releases it.
func (c *Controller) cancellable(ctx context.Context, uid types.UID) (context.Context, func()) {
	ctx, cancel := context.WithCancel(ctx)
	c.mu.Lock()
	c.syncing[uid] = cancel
	c.mu.Unlock()
	if p := c.PodByUID(uid); p == nil || p.DeletionTimestamp != nil {
		cancel() // deleted before the registration above could see it
	}
	return ctx, func() {
		c.mu.Lock()
		delete(c.syncing, uid)
		c.mu.Unlock()
		cancel()
	}
}

// cancelSync ends the pod's sync in progress, if any.
func (c *Controller) cancelSync(uid types.UID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cancel, ok := c.syncing[uid]; ok {
		cancel()
	}
}
