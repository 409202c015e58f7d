package containerd

import (
	"sync"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// WatchContainers streams the status of each container of the node that
// starts or exits. The stream ends with Unavailable when the plugin loses
// containerd's event stream (it may have missed events: list again) and with
// ResourceExhausted when the watcher falls too far behind.
func (b *Backend) WatchContainers(req *runtimev1.WatchContainersRequest, stream grpc.ServerStreamingServer[runtimev1.ContainerStatus]) error {
	s, err := b.sessionFor(req.GetNode())
	if err != nil {
		return err
	}
	w := s.watch.add(req.GetNode())
	defer s.watch.remove(w)
	// The protocol's promise: headers go out once the watch is registered.
	if err := stream.SendHeader(metadata.MD{}); err != nil {
		return err
	}
	for {
		select {
		case st := <-w.ch:
			if err := stream.Send(st); err != nil {
				return err
			}
		case <-w.done:
			// Deliver what was queued before the end.
			for {
				select {
				case st := <-w.ch:
					if err := stream.Send(st); err != nil {
						return err
					}
				default:
					return w.err
				}
			}
		case <-stream.Context().Done():
			return nil
		}
	}
}

// watchBuffer is how many statuses a watcher may lag behind.
const watchBuffer = 1024

// watchHub fans container statuses out to the watchers of each node.
type watchHub struct {
	mu       sync.Mutex
	watchers map[*watcher]struct{}
}

type watcher struct {
	node string
	ch   chan *runtimev1.ContainerStatus
	done chan struct{} // closed when the hub ends the watch; err says why
	err  error
}

func newWatchHub() *watchHub {
	return &watchHub{watchers: map[*watcher]struct{}{}}
}

func (h *watchHub) add(node string) *watcher {
	w := &watcher{node: node, ch: make(chan *runtimev1.ContainerStatus, watchBuffer), done: make(chan struct{})}
	h.mu.Lock()
	h.watchers[w] = struct{}{}
	h.mu.Unlock()
	return w
}

func (h *watchHub) remove(w *watcher) {
	h.mu.Lock()
	delete(h.watchers, w)
	h.mu.Unlock()
}

// publish queues st for every watcher of node, never blocking: a watcher
// whose queue is full is ended instead.
func (h *watchHub) publish(node string, st *runtimev1.ContainerStatus) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for w := range h.watchers {
		if w.node != node {
			continue
		}
		select {
		case w.ch <- st:
		default:
			h.endLocked(w, status.Error(codes.ResourceExhausted, "container watch fell behind; list again and watch anew"))
		}
	}
}

// closeAll ends every watch with err.
func (h *watchHub) closeAll(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for w := range h.watchers {
		h.endLocked(w, err)
	}
}

func (h *watchHub) endLocked(w *watcher, err error) {
	w.err = err
	close(w.done)
	delete(h.watchers, w)
}

// watching says whether anyone watches; it spares event handling work.
func (h *watchHub) watching() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.watchers) > 0
}
