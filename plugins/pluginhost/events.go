package pluginhost

import pluginv1 "github.com/fedlet/fedlet/plugins/proto/plugin/v1"

// EventKind says what happened to a plugin process.
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

// Reasons of a plugin process's state, CamelCase as in Kubernetes
// conditions.
const (
	ReasonRunning     = "PluginRunning"     // up and configured
	ReasonExited      = "PluginExited"      // the process exited; being restarted
	ReasonUnhealthy   = "PluginUnhealthy"   // failed its health checks; killed and being restarted
	ReasonStartFailed = "PluginStartFailed" // a restart failed; retried with backoff
	ReasonStopped     = "PluginStopped"     // stopped for good because its context ended
)

// PluginEvent tells a subscriber of a change of a supervised plugin's
// state, whatever its family.
type PluginEvent struct {
	Kind EventKind
	// Reason is one of the Reason constants; Message says more, for humans.
	Reason  string
	Message string
	// Err is why the process is down (Down only; nil when stopped).
	Err error
	// Describe is what the plugin said of itself (Started only).
	Describe *pluginv1.DescribeResponse
}

// subscriberBuffer is how many events a slow subscriber may fall behind
// before older ones are dropped; the newest state is always delivered.
const subscriberBuffer = 8

// Subscribe returns a channel of the plugin's events, starting with its
// current state (Started while it is up), and a function that cancels the
// subscription. Delivery never waits for the subscriber: one that falls
// behind loses its oldest events, never the newest. The channel is closed
// after cancel, or after the final Down once the plugin has stopped.
func (p *process) Subscribe() (<-chan PluginEvent, func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ch := make(chan PluginEvent, subscriberBuffer)
	ch <- p.state
	if p.closed {
		close(ch)
		return ch, func() {}
	}
	id := p.nextSub
	p.nextSub++
	p.subs[id] = ch
	return ch, func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		if c, ok := p.subs[id]; ok {
			delete(p.subs, id)
			close(c)
		}
	}
}

// broadcast records ev as the current state and offers it to every
// subscriber. Callers hold p.mu.
func (p *process) broadcast(ev PluginEvent) {
	p.state = ev
	for _, ch := range p.subs {
		offer(ch, ev)
	}
}

// offer puts ev on ch, dropping the oldest pending event when ch is full.
// Only the holder of p.mu sends, so the loop ends.
func offer[E any](ch chan E, ev E) {
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
func (p *process) closeSubscribers() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for id, ch := range p.subs {
		delete(p.subs, id)
		close(ch)
	}
}
