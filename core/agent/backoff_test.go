package agent

import (
	"context"
	"testing"
	"time"
)

// A plugin that fails to start is tried again after 1 s, 2 s, 4 s, ...,
// then every minute, for ever.
func TestStartBackoffDelays(t *testing.T) {
	next := startBackoff.DelayFunc()
	want := []time.Duration{1, 2, 4, 8, 16, 32, 60, 60, 60}
	for i, w := range want {
		if got := next(); got != w*time.Second {
			t.Fatalf("delay %d = %s, want %s", i+1, got, w*time.Second)
		}
	}
	for range 1000 {
		next()
	}
	if got := next(); got != time.Minute {
		t.Errorf("after many failures the delay is %s, want a minute", got)
	}
}

func TestRetryStartStopsOnSuccessOrCancel(t *testing.T) {
	calls := 0
	retryStart(context.Background(), func(context.Context) bool { calls++; return true })
	if calls != 1 {
		t.Errorf("a start that succeeds at once was called %d times", calls)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		retryStart(ctx, func(context.Context) bool { return false })
	}()
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("retryStart went on after its context ended")
	}
}
