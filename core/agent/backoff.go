package agent

import (
	"context"
	"math"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// startBackoff spaces the attempts to start a plugin: one second, doubling,
// a minute at most, for as long as it takes.
var startBackoff = wait.Backoff{Duration: time.Second, Factor: 2, Cap: time.Minute, Steps: math.MaxInt32}

// retryStart calls start at once, then again after each back-off delay,
// until it succeeds (true) or ctx ends.
func retryStart(ctx context.Context, start func(context.Context) bool) {
	_ = startBackoff.DelayFunc().Until(ctx, true, true, func(ctx context.Context) (bool, error) {
		return start(ctx), nil
	})
}
