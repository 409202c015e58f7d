package pod

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// watchHeaderWait bounds the wait for a plugin to confirm its watch.
const watchHeaderWait = 5 * time.Second

// watchRuntime keeps the runtime state current: it opens the container
// event stream, lists the runtime (so nothing that happened before the
// stream opened is missed), then applies events until the stream breaks, a
// relist is asked for, or the resync period passes.
func (c *Controller) watchRuntime(ctx context.Context) {
	backoff := wait.Backoff{Duration: 200 * time.Millisecond, Factor: 2, Cap: 10 * time.Second, Steps: 1 << 30}
	for ctx.Err() == nil {
		if err := c.watchOnce(ctx); err != nil && ctx.Err() == nil {
			c.log.Warn("watch runtime", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(backoff.Step()):
			}
			continue
		}
		backoff.Duration = 200 * time.Millisecond
	}
}

func (c *Controller) watchOnce(ctx context.Context) error {
	streamCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.runtime.WatchContainers(streamCtx, &runtimev1.WatchContainersRequest{Node: c.node})
	if err != nil {
		return err
	}
	// The headers say the watch is registered: from now on no event is
	// missed. A plugin that does not send them is listed after a while anyway.
	headers := make(chan error, 1)
	go func() {
		_, err := stream.Header()
		headers <- err
	}()
	select {
	case err := <-headers:
		if err != nil {
			return err
		}
	case <-time.After(watchHeaderWait):
		c.log.Warn("the runtime plugin did not confirm its container watch; listing anyway")
	case <-ctx.Done():
		return nil
	}
	if err := c.listRuntime(ctx); err != nil {
		return err
	}
	events := make(chan *runtimev1.ContainerStatus)
	recvErr := make(chan error, 1)
	go func() {
		for {
			st, err := stream.Recv()
			if err != nil {
				recvErr <- err
				return
			}
			select {
			case events <- st:
			case <-streamCtx.Done():
				recvErr <- streamCtx.Err()
				return
			}
		}
	}()
	defer func() { cancel(); <-recvErr }()

	resync := time.NewTimer(resyncPeriod)
	defer resync.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-c.relist:
			return nil
		case <-resync.C:
			return nil
		case st := <-events:
			c.state.setContainer(st)
			c.queue.Add(types.UID(st.GetPod().GetUid()))
		case err := <-recvErr:
			recvErr <- err // for the deferred wait
			return err
		}
	}
}

// listRuntime replaces the runtime state with a fresh listing and re-checks
// every pod of the node and every pod the runtime holds.
func (c *Controller) listRuntime(ctx context.Context) error {
	callCtx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	resp, err := c.runtime.ListSandboxes(callCtx, &runtimev1.ListSandboxesRequest{Node: c.node})
	if err != nil {
		return err
	}
	for _, uid := range c.state.replace(resp.Sandboxes) {
		c.queue.Add(uid)
	}
	c.collectNetworkGarbage(ctx, resp.Sandboxes)
	for _, obj := range c.informer.GetStore().List() {
		c.queue.Add(obj.(*corev1.Pod).UID)
	}
	return nil
}
