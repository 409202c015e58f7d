package pod

import (
	"context"

	"k8s.io/apimachinery/pkg/types"

	"github.com/fedlet/fedlet/core/podcontroller"
	"github.com/fedlet/fedlet/core/runtimewatch"
	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// Runtime implements podcontroller.Strategy: the runtime state is kept by
// the container event stream, with a listing each time it opens.
func (c *Steps) Runtime() podcontroller.Runtime {
	return podcontroller.RuntimeWatch[runtimev1.ContainerStatus]{
		What: "container",
		Open: func(ctx context.Context) (runtimewatch.Stream[runtimev1.ContainerStatus], error) {
			return c.runtime.WatchContainers(ctx, &runtimev1.WatchContainersRequest{Node: c.node})
		},
		List: c.listRuntime,
		Apply: func(st *runtimev1.ContainerStatus) types.UID {
			c.state.setContainer(st)
			return types.UID(st.GetPod().GetUid())
		},
	}
}

// listRuntime replaces the runtime state with a fresh listing and returns
// every pod that was or is in either; it collects the network attachments
// of pods neither has.
func (c *Steps) listRuntime(ctx context.Context) ([]types.UID, error) {
	resp, err := c.runtime.ListSandboxes(ctx, &runtimev1.ListSandboxesRequest{Node: c.node})
	if err != nil {
		return nil, err
	}
	touched := c.state.replace(resp.Sandboxes)
	c.network.collectGarbage(ctx, resp.Sandboxes)
	return touched, nil
}
