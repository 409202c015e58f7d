package podproxy

import (
	"context"
	"errors"
	"math"
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
// A stream that fails to open is tried again after 1 s, doubling up to
// 30 s; one that breaks after it opened, 1 s after. A backend without
// events (Unimplemented) is not asked again.
func (c *Proxy) followEvents(ctx context.Context) {
	backoff := wait.Backoff{Duration: time.Second, Factor: 2, Cap: 30 * time.Second, Steps: math.MaxInt32}
	for immediate := true; ctx.Err() == nil; immediate = false {
		// Until ends (nil) once a stream that opened breaks, so that the
		// back-off starts over; or with ctx.
		err := backoff.DelayFunc().Until(ctx, immediate, true, func(ctx context.Context) (bool, error) {
			opened := false
			err := c.receiveEvents(ctx, func() { opened = true })
			switch {
			case ctx.Err() != nil:
				return true, nil
			case status.Code(err) == codes.Unimplemented:
				c.log.Debug("the backend reports no pod events")
				return false, errNoEvents
			}
			c.log.Debug("watch pod events", "err", err)
			return opened, nil
		})
		if errors.Is(err, errNoEvents) {
			return
		}
	}
}

// errNoEvents ends the following of a backend that has no events.
var errNoEvents = errors.New("the backend reports no pod events")

// receiveEvents records the events of one stream until it breaks; opened
// is called once the stream is open.
func (c *Proxy) receiveEvents(ctx context.Context, opened func()) error {
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
func (c *Proxy) recordEvent(ev *runtimev1.PodEvent) {
	pod := c.ctrl.PodByUID(types.UID(ev.GetPod().GetUid()))
	if pod == nil || ev.GetReason() == "" {
		return
	}
	kind := corev1.EventTypeNormal
	if ev.GetType() == corev1.EventTypeWarning {
		kind = corev1.EventTypeWarning
	}
	c.events.Event(pod, kind, ev.GetReason(), ev.GetMessage())
}
