package podproxy

import (
	"context"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// followEvents records what the backend records about the node's pods
// (a member's Scheduled, Pulled, BackOff, ...) on the pods, until ctx ends.
// A backend without events (Unimplemented) is not asked again.
func (c *Controller) followEvents(ctx context.Context) {
	backoff := wait.Backoff{Duration: time.Second, Factor: 2, Cap: 30 * time.Second, Steps: 1 << 30}
	for ctx.Err() == nil {
		err := c.receiveEvents(ctx, func() { backoff.Duration = time.Second })
		switch {
		case ctx.Err() != nil:
			return
		case status.Code(err) == codes.Unimplemented:
			c.log.Debug("the backend reports no pod events")
			return
		}
		c.log.Debug("watch pod events", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(backoff.Step()):
		}
	}
}

// receiveEvents records the events of one stream until it breaks; opened
// is called once the stream is open.
func (c *Controller) receiveEvents(ctx context.Context, opened func()) error {
	stream, err := c.backend.WatchPodEvents(ctx, &runtimev1.WatchPodEventsRequest{Node: c.node})
	if err != nil {
		return err
	}
	if _, err := stream.Header(); err != nil {
		return err
	}
	opened()
	for {
		ev, err := stream.Recv()
		if err != nil {
			return err
		}
		c.recordEvent(ev)
	}
}

// recordEvent records ev on its pod, if the node has it: the hub's event
// recorder counts repeats, as it does for the agent's own events.
func (c *Controller) recordEvent(ev *runtimev1.PodEvent) {
	pod := c.podByUID(types.UID(ev.GetPod().GetUid()))
	if pod == nil || ev.GetReason() == "" {
		return
	}
	kind := corev1.EventTypeNormal
	if ev.GetType() == corev1.EventTypeWarning {
		kind = corev1.EventTypeWarning
	}
	c.events.Event(pod, kind, ev.GetReason(), ev.GetMessage())
}
