package pluginhost

import (
	"context"

	"google.golang.org/grpc"

	networkv1 "github.com/fedlet/fedlet/plugins/proto/network/v1"
	"github.com/fedlet/fedlet/plugins/sdk"
)

// NetworkSpec says which network plugin process to run.
type NetworkSpec = PluginSpec

// NetworkEvent tells a subscriber of a change of a Network's state.
type NetworkEvent = PluginEvent[*networkv1.DescribeResponse]

// Network is a supervised network plugin process. Its process may be
// restarted any number of times; Client stays valid throughout.
type Network struct {
	proc   *process[*networkv1.DescribeResponse]
	client networkv1.NetworkClient
}

var networkKind = kind[*networkv1.DescribeResponse]{
	family:     "network",
	pluginName: sdk.NetworkPluginName,
	versions:   sdk.NetworkVersionedPlugins(nil),
	driven:     sdk.NetworkProtocolV1,
	bind: func(raw any) (*grpc.ClientConn, <-chan struct{}, bool) {
		c, ok := raw.(*sdk.NetworkConn)
		if !ok {
			return nil, nil, false
		}
		return c.Conn, c.Exited, true
	},
	describe: func(ctx context.Context, conn grpc.ClientConnInterface) (*networkv1.DescribeResponse, error) {
		return networkv1.NewNetworkClient(conn).Describe(ctx, &networkv1.DescribeRequest{})
	},
	configure: func(ctx context.Context, conn grpc.ClientConnInterface, spec PluginSpec) error {
		_, err := networkv1.NewNetworkClient(conn).Configure(ctx, &networkv1.ConfigureRequest{Config: spec.Config, Nodes: spec.Nodes})
		return err
	},
}

// StartNetwork launches the network plugin process of spec, calls Describe
// and Configure, and returns once that first start succeeded; otherwise it
// returns why it failed, with the plugin's last stderr lines.
//
// It is supervised as StartRuntime's process is: restarted with backoff
// when it exits or fails its health checks, described and configured again
// after each restart, announced to subscribers, and stopped when ctx ends.
// A restarted network plugin keeps no attachment in memory that matters:
// what it set up lives on the node, so subscribers need not redo anything
// on Started, though they may run GC.
func (h *Host) StartNetwork(ctx context.Context, spec NetworkSpec) (*Network, error) {
	p, err := startProcess(ctx, h, networkKind, spec)
	if err != nil {
		return nil, err
	}
	return &Network{proc: p, client: networkv1.NewNetworkClient(p.conn())}, nil
}

// Client returns the network client of the process. It is one client for
// the Network's whole life: each call goes to the process that is up at
// that moment, and fails with codes.Unavailable while none is.
func (n *Network) Client() networkv1.NetworkClient { return n.client }

// Describe returns what the plugin said of itself at its last start.
func (n *Network) Describe() *networkv1.DescribeResponse { return n.proc.Describe() }

// State says whether the process is up, with a reason (one of the Reason
// constants) and a message for humans.
func (n *Network) State() (up bool, reason, message string) { return n.proc.State() }

// Subscribe returns a channel of the Network's events, starting with its
// current state (Started while it is up), and a function that cancels the
// subscription. Delivery never waits for the subscriber: one that falls
// behind loses its oldest events, never the newest. The channel is closed
// after cancel, or after the final Down once the Network has stopped.
func (n *Network) Subscribe() (<-chan NetworkEvent, func()) { return n.proc.Subscribe() }

// Done is closed once the Network has stopped for good: its context ended,
// its process is gone and its supervisor has returned.
func (n *Network) Done() <-chan struct{} { return n.proc.Done() }
