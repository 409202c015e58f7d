package runtimewatch

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/metadata"
)

type message struct{}

// openStream is a stream that confirms at once and ends with its context.
type openStream struct{ ctx context.Context }

func (s openStream) Header() (metadata.MD, error) { return nil, nil }

func (s openStream) Recv() (*message, error) {
	<-s.ctx.Done()
	return nil, s.ctx.Err()
}

// A watch that cannot be opened is tried again after 200 ms, then 400 ms;
// once open, it is listed, and a round that ends well starts the next at
// once, with the back-off starting over.
func TestFollowBacksOffThenLists(t *testing.T) {
	var mu sync.Mutex
	var opens []time.Time
	listed := make(chan struct{}, 10)
	rounds := 0
	w := Watch[message]{
		What: "message",
		Open: func(ctx context.Context) (Stream[message], error) {
			mu.Lock()
			defer mu.Unlock()
			opens = append(opens, time.Now())
			if n := len(opens); n <= 2 || n == 4 {
				return nil, errors.New("the plugin is restarting")
			}
			return openStream{ctx}, nil
		},
		List: func(context.Context) error {
			listed <- struct{}{}
			return nil
		},
		Serve: func(ctx context.Context, _ <-chan *message, _ <-chan error) error {
			mu.Lock()
			rounds++
			first := rounds == 1
			mu.Unlock()
			if first {
				return nil // a relist: the next round starts at once
			}
			<-ctx.Done()
			return nil
		},
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { Follow(ctx, slog.New(slog.DiscardHandler), w); close(done) }()
	defer func() { cancel(); <-done }()

	for range 2 {
		select {
		case <-listed:
		case <-time.After(10 * time.Second):
			t.Fatal("never listed")
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(opens) != 5 {
		t.Fatalf("%d opens, want 5 (two failures, a round, a failure, a round)", len(opens))
	}
	if d := opens[1].Sub(opens[0]); d < 200*time.Millisecond {
		t.Errorf("first retry after %s, want 200 ms", d)
	}
	if d := opens[2].Sub(opens[1]); d < 400*time.Millisecond {
		t.Errorf("second retry after %s, want 400 ms", d)
	}
	if d := opens[3].Sub(opens[2]); d >= 200*time.Millisecond {
		t.Errorf("the round after a relist opened after %s, want at once", d)
	}
	if d := opens[4].Sub(opens[3]); d < 200*time.Millisecond || d >= 800*time.Millisecond {
		t.Errorf("retry after a good round came after %s, want the back-off started over (200 ms)", d)
	}
}
