package pluginhost

import (
	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// EventKind says what happened to a runtime plugin process.
type EventKind int

const (
	// Started: a process is up and configured, after the first start or a
	// restart. A fresh process knows nothing of the agent: subscribers
	// resync (list and adopt what runs).
	Started EventKind = iota + 1
	// Down: no process is serving; calls fail with codes.Unavailable until
	// the next Started. Subscribers report it in the node's condition.
	Down
)

// String returns "Started" or "Down".
func (k EventKind) String() string {
	switch k {
	case Started:
		return "Started"
	case Down:
		return "Down"
	}
	return "EventKind(?)"
}

// Event tells a subscriber of a change of a Runtime's state.
type Event struct {
	Kind EventKind
	// Reason is one of the Reason constants; Message says more, for humans.
	Reason  string
	Message string
	// Err is why the process is down (Down only; nil when stopped).
	Err error
	// Describe is what the plugin said of itself (Started only).
	Describe *runtimev1.DescribeResponse
}

// subscriberBuffer is how many events a slow subscriber may fall behind
// before older ones are dropped; the newest state is always delivered.
const subscriberBuffer = 8

// Subscribe returns a channel of the Runtime's events, starting with its
// current state (Started while it is up), and a function that cancels the
// subscription. Delivery never waits for the subscriber: one that falls
// behind loses its oldest events, never the newest. The channel is closed
// after cancel, or after the final Down once the Runtime has stopped.
func (r *Runtime) Subscribe() (<-chan Event, func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ch := make(chan Event, subscriberBuffer)
	ch <- r.state
	if r.closed {
		close(ch)
		return ch, func() {}
	}
	id := r.nextSub
	r.nextSub++
	r.subs[id] = ch
	return ch, func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		if c, ok := r.subs[id]; ok {
			delete(r.subs, id)
			close(c)
		}
	}
}

// broadcast records ev as the current state and offers it to every
// subscriber. Callers hold r.mu.
func (r *Runtime) broadcast(ev Event) {
	r.state = ev
	for _, ch := range r.subs {
		offer(ch, ev)
	}
}

// offer puts ev on ch, dropping the oldest pending event when ch is full.
// Only the holder of r.mu sends, so the loop ends.
func offer(ch chan Event, ev Event) {
	for {
		select {
		case ch <- ev:
			return
		default:
		}
		select {
		case <-ch:
		default:
		}
	}
}

// closeSubscribers ends every subscription; no event follows.
func (r *Runtime) closeSubscribers() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	for id, ch := range r.subs {
		delete(r.subs, id)
		close(ch)
	}
}
