package agent

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/grpc/status"

	"github.com/fedlet/fedlet/plugins/pluginhost"
	networkv1 "github.com/fedlet/fedlet/plugins/proto/network/v1"
)

// networkStatusTimeout bounds the network plugin's Status call in each
// node status check.
const networkStatusTimeout = 5 * time.Second

// networkProcess is one network plugin process, shared by the nodes that
// name it. It is started, and retried with back-off, independently of the
// runtimes: a node whose network cannot start is NotReady and says why.
type networkProcess struct {
	spec    pluginhost.NetworkSpec
	log     *slog.Logger
	started chan struct{} // closed once plugin is set

	mu       sync.Mutex
	plugin   *pluginhost.Network
	startErr error
}

// run starts the plugin, retrying until it starts or ctx ends; the host
// supervises it from then on.
func (p *networkProcess) run(ctx context.Context, host *pluginhost.Host) {
	retryStart(ctx, func(ctx context.Context) bool {
		plugin, err := host.StartNetwork(ctx, p.spec)
		p.mu.Lock()
		p.plugin, p.startErr = plugin, err
		p.mu.Unlock()
		if err != nil {
			p.log.Error("start network plugin", "err", err)
			return false
		}
		close(p.started)
		return true
	})
}

// client waits until the plugin has started once and returns its client,
// which stays valid across restarts; nil if ctx ended first.
func (p *networkProcess) client(ctx context.Context) networkv1.NetworkClient {
	select {
	case <-p.started:
		return p.plugin.Client()
	case <-ctx.Done():
		return nil
	}
}

// state says whether the network can attach the node's pods now, and why
// not: the plugin's process state, then its own Status (CNI STATUS).
func (p *networkProcess) state(ctx context.Context, node string) (bool, string, string) {
	p.mu.Lock()
	plugin, startErr := p.plugin, p.startErr
	p.mu.Unlock()
	if plugin == nil {
		msg := "the network plugin is starting"
		if startErr != nil {
			msg = startErr.Error()
		}
		return false, pluginhost.ReasonStartFailed, msg
	}
	if up, reason, msg := plugin.State(); !up {
		return false, reason, msg
	}
	ctx, cancel := context.WithTimeout(ctx, networkStatusTimeout)
	defer cancel()
	st, err := plugin.Client().Status(ctx, &networkv1.StatusRequest{Node: node})
	if err != nil {
		return false, "NetworkPluginNotReady", "network status: " + status.Convert(err).Message()
	}
	if !st.GetReady() {
		return false, nonEmpty(st.GetReason(), "NetworkPluginNotReady"), st.GetMessage()
	}
	return true, "", ""
}

func nonEmpty(s, fallback string) string {
	if s == "" {
		return fallback
	}
	return s
}
