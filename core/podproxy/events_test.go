package podproxy

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// refusingEvents refuses the event stream as Unavailable twice, then as
// Unimplemented, and records when it was asked.
type refusingEvents struct {
	runtimev1.RuntimeClient
	asked []time.Time
}

func (r *refusingEvents) WatchPodEvents(context.Context, *runtimev1.WatchPodEventsRequest, ...grpc.CallOption) (grpc.ServerStreamingClient[runtimev1.PodEvent], error) {
	r.asked = append(r.asked, time.Now())
	if len(r.asked) <= 2 {
		return nil, status.Error(codes.Unavailable, "the member is down")
	}
	return nil, status.Error(codes.Unimplemented, "no events")
}

// The event stream is asked for again after 1 s, then 2 s, and no more
// once the backend says it has none.
func TestEventStreamBacksOffAndStopsWhenUnimplemented(t *testing.T) {
	backend := &refusingEvents{}
	p := &Proxy{backend: backend, node: testNode, log: slog.New(slog.DiscardHandler)}
	done := make(chan struct{})
	go func() { p.followEvents(t.Context()); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("still following a backend that has no events")
	}
	if len(backend.asked) != 3 {
		t.Fatalf("asked %d times, want 3", len(backend.asked))
	}
	if d := backend.asked[1].Sub(backend.asked[0]); d < time.Second || d >= 2*time.Second {
		t.Errorf("first retry after %s, want 1 s", d)
	}
	if d := backend.asked[2].Sub(backend.asked[1]); d < 2*time.Second || d >= 4*time.Second {
		t.Errorf("second retry after %s, want 2 s", d)
	}
}
