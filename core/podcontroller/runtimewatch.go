package podcontroller

import (
	"context"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/fedlet/fedlet/core/runtimewatch"
)

// RuntimeWatch says how a strategy's picture of the runtime is kept: by a
// status stream of T, with a listing each time the stream is (re)opened, on
// Resync and every minute.
type RuntimeWatch[T any] struct {
	// What names the stream's messages in logs ("container", "pod").
	What string
	// Open opens the runtime's status stream of the node.
	Open func(ctx context.Context) (runtimewatch.Stream[T], error)
	// List lists the runtime, makes that the strategy's picture, and returns
	// the pods that were or are in either; the controller queues them and
	// every pod of the node.
	List func(ctx context.Context) ([]types.UID, error)
	// Apply applies one message of the stream to the picture and returns
	// the pod it concerns, which the controller queues.
	Apply func(msg *T) types.UID
	// Poll, if set, is asked every PollEvery; true lists the runtime again
	// without closing the stream (a backend only says by a listing that a
	// deleted pod is gone).
	Poll      func() bool
	PollEvery time.Duration
}

func (w RuntimeWatch[T]) follow(ctx context.Context, c *Controller) {
	runtimewatch.Follow(ctx, c.log, runtimewatch.Watch[T]{
		What: w.What,
		Open: w.Open,
		List: func(ctx context.Context) error { return w.list(ctx, c) },
		Serve: func(ctx context.Context, messages <-chan *T, failed <-chan error) error {
			return w.serve(ctx, c, messages, failed)
		},
	})
}

// list lists the runtime and re-checks every pod it touched and every pod
// of the node.
func (w RuntimeWatch[T]) list(ctx context.Context, c *Controller) error {
	touched, err := w.List(ctx)
	if err != nil {
		return err
	}
	for _, uid := range touched {
		c.queue.Add(uid)
	}
	c.EnqueueAll()
	return nil
}

// serve applies the stream's messages until it breaks, a relist is asked
// for, or the resync period passes.
func (w RuntimeWatch[T]) serve(ctx context.Context, c *Controller, messages <-chan *T, failed <-chan error) error {
	resync := time.NewTimer(resyncPeriod)
	defer resync.Stop()
	var poll <-chan time.Time
	if w.Poll != nil && w.PollEvery > 0 {
		t := time.NewTicker(w.PollEvery)
		defer t.Stop()
		poll = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-c.relist:
			return nil
		case <-resync.C:
			return nil
		case <-poll:
			if w.Poll() {
				// The stream stays open: what it reports meanwhile waits
				// and is applied after the listing, so nothing newer is lost.
				if err := w.list(ctx, c); err != nil {
					return err
				}
			}
		case m := <-messages:
			c.queue.Add(w.Apply(m))
		case err := <-failed:
			return err
		}
	}
}
