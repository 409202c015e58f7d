package pod

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/fedlet/fedlet/core/runtimewatch"
	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// watchRuntime keeps the runtime state current: it opens the container
// event stream, lists the runtime (so nothing that happened before the
// stream opened is missed), then applies events until the stream breaks, a
// relist is asked for, or the resync period passes.
func (c *Controller) watchRuntime(ctx context.Context) {
	runtimewatch.Follow(ctx, c.log, runtimewatch.Watch[runtimev1.ContainerStatus]{
		What: "container",
		Open: func(ctx context.Context) (runtimewatch.Stream[runtimev1.ContainerStatus], error) {
			return c.runtime.WatchContainers(ctx, &runtimev1.WatchContainersRequest{Node: c.node})
		},
		List:  c.listRuntime,
		Serve: c.applyContainerEvents,
	})
}

func (c *Controller) applyContainerEvents(ctx context.Context, events <-chan *runtimev1.ContainerStatus, failed <-chan error) error {
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
		case err := <-failed:
			return err
		}
	}
}

// listRuntime replaces the runtime state with a fresh listing and re-checks
// every pod of the node and every pod the runtime holds.
func (c *Controller) listRuntime(ctx context.Context) error {
	resp, err := c.runtime.ListSandboxes(ctx, &runtimev1.ListSandboxesRequest{Node: c.node})
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
