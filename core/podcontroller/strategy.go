package podcontroller

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Strategy is one way of running a node's pods: what the controller asks of
// it for each pod, and how it keeps its picture of what the runtime runs.
type Strategy interface {
	// Sync brings one pod closer to its spec and reports its status. pod is
	// the informer's copy, nil once the pod is gone from the API server.
	// ctx ends when the agent stops and, unless the pod was already being
	// deleted, when its deletion is seen. Sync returns how soon to look at
	// the pod again, if it waits for something; an error retries it with
	// back-off.
	Sync(ctx context.Context, uid types.UID, pod *corev1.Pod) (time.Duration, error)
	// Deleting is told that the pod's deletion was seen, before the pod is
	// queued (so that, for example, no probe kills a pod being deleted).
	Deleting(uid types.UID)
	// Runtime is how the controller follows the runtime: a RuntimeWatch.
	Runtime() Runtime
	// Run runs what the strategy keeps running beside the syncs (probes, a
	// stream of the backend's events), from when the caches are filled, and
	// returns when ctx has ended and they, and whatever the syncs started,
	// have stopped.
	Run(ctx context.Context)
}

// Runtime is a RuntimeWatch of some message type.
type Runtime interface {
	follow(ctx context.Context, c *Controller)
}
