// Package containerwatch serves WatchContainers for a backend that can
// list its containers but is not told when they change: it lists them
// every interval and sends what changed.
package containerwatch

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// DefaultInterval is how often Poll lists when given no interval: a
// container's start or exit reaches the agent at most this late.
const DefaultInterval = 100 * time.Millisecond

// attemptKey identifies a container attempt, as the protocol does.
type attemptKey struct {
	pod, name string
	attempt   uint32
}

// Poll serves a WatchContainers call: it lists once, sends the response
// headers (the watch is registered: what changes from now on is sent),
// then lists every interval and sends each container attempt that is new
// or whose state changed, until the call ends.
func Poll(srv grpc.ServerStreamingServer[runtimev1.ContainerStatus], interval time.Duration, list func(context.Context) ([]*runtimev1.ContainerStatus, error)) error {
	ctx := srv.Context()
	if interval <= 0 {
		interval = DefaultInterval
	}
	seen := map[attemptKey]runtimev1.ContainerState{}
	first := true
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		statuses, err := list(ctx)
		if err != nil {
			return fmt.Errorf("list containers to watch: %w", err)
		}
		for _, st := range statuses {
			k := attemptKey{st.GetPod().GetUid(), st.GetName(), st.GetAttempt()}
			if prev, ok := seen[k]; !first && (!ok || prev != st.GetState()) {
				if err := srv.Send(st); err != nil {
					return err
				}
			}
			seen[k] = st.GetState()
		}
		if first {
			if err := srv.SendHeader(nil); err != nil {
				return err
			}
			first = false
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}
