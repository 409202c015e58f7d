// Package runtimewatch follows a plugin's status stream the way the pod
// controllers need it: open the stream, wait until the plugin confirms that
// the watch is registered (its response headers), list, then hand over each
// message until the stream breaks or the caller ends the round; and again,
// with back-off after a failure, until the context ends. Listing after the
// watch is registered is what makes sure no change is missed in between.
package runtimewatch

import (
	"context"
	"log/slog"
	"math"
	"time"

	"google.golang.org/grpc/metadata"
	"k8s.io/apimachinery/pkg/util/wait"
)

// HeaderWait bounds the wait for a plugin to confirm its watch: one that
// does not is listed anyway.
const HeaderWait = 5 * time.Second

// Stream is a plugin's server stream of T, as gRPC's generated clients
// return it.
type Stream[T any] interface {
	Header() (metadata.MD, error)
	Recv() (*T, error)
}

// Watch is one kind of stream a controller follows.
type Watch[T any] struct {
	// What names the stream in logs ("container", "pod").
	What string
	// Open opens the stream; it ends with the context it is given.
	Open func(ctx context.Context) (Stream[T], error)
	// List lists what the stream will then report changes of.
	List func(ctx context.Context) error
	// Serve takes the stream's messages until it returns: nil to start a
	// new round (a relist, a resync), an error to retry after a back-off.
	// failed delivers the stream's error once it breaks.
	Serve func(ctx context.Context, messages <-chan *T, failed <-chan error) error
}

// Follow runs rounds of w until ctx ends: a round that ends well is
// followed by another at once; one that fails, after a back-off of 200 ms
// doubling up to 10 s, which starts over after the next round that ends well.
func Follow[T any](ctx context.Context, log *slog.Logger, w Watch[T]) {
	backoff := wait.Backoff{Duration: 200 * time.Millisecond, Factor: 2, Cap: 10 * time.Second, Steps: math.MaxInt32}
	for ctx.Err() == nil {
		// Until ends (nil) after a round that ended well, or with ctx.
		_ = backoff.DelayFunc().Until(ctx, true, true, func(ctx context.Context) (bool, error) {
			if err := round(ctx, log, w); err != nil && ctx.Err() == nil {
				log.Warn("watch "+w.What+"s", "err", err)
				return false, nil
			}
			return true, nil
		})
	}
}

func round[T any](ctx context.Context, log *slog.Logger, w Watch[T]) error {
	streamCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := w.Open(streamCtx)
	if err != nil {
		return err
	}
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
	case <-time.After(HeaderWait):
		log.Warn("the plugin did not confirm its " + w.What + " watch; listing anyway")
	case <-ctx.Done():
		return nil
	}
	if err := w.List(ctx); err != nil {
		return err
	}

	messages := make(chan *T)
	failed := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			m, err := stream.Recv()
			if err != nil {
				failed <- err
				return
			}
			select {
			case messages <- m:
			case <-streamCtx.Done():
				return
			}
		}
	}()
	defer func() { cancel(); <-done }()
	return w.Serve(ctx, messages, failed)
}
