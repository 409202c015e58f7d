package sdktest

import (
	"context"
	"net/netip"
	"slices"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	networkv1 "github.com/fedlet/fedlet/plugins/proto/network/v1"
	"github.com/fedlet/fedlet/plugins/sdk"
)

// defaultSubnet is where Network allocates from when Add gives no ranges.
var defaultSubnet = netip.MustParsePrefix("10.88.0.0/16")

// Network is an in-memory networkv1.NetworkServer. It is ready for every
// node given to Configure and gives each attachment the next address of the
// first range of its Add (the subnet's first address is the gateway). It
// serves the nodes of its last Configure (sdk.Nodes) even when called
// directly; the other request rules (an attachment's identity, Add's
// network namespace) are sdk.RequestRules', which sdk.ServeNetwork puts in
// front of it.
type Network struct {
	networkv1.UnimplementedNetworkServer

	name, version string

	mu             sync.Mutex
	config         []byte
	nodes          []string
	served         sdk.Nodes
	configureCalls int
	attachments    map[string]map[attachmentKey]*networkv1.Result // node -> attachment -> result
	next           map[string]int                                 // node -> host number of the next address
}

type attachmentKey struct{ containerID, ifname string }

// NewNetwork returns a Network that describes itself with name and version.
func NewNetwork(name, version string) *Network {
	return &Network{
		name:        name,
		version:     version,
		attachments: map[string]map[attachmentKey]*networkv1.Result{},
		next:        map[string]int{},
	}
}

// Describe reports the name and version given to NewNetwork.
func (n *Network) Describe(context.Context, *networkv1.DescribeRequest) (*networkv1.DescribeResponse, error) {
	return &networkv1.DescribeResponse{Name: n.name, Version: n.version}, nil
}

// Configure remembers the configuration and the nodes to serve.
func (n *Network) Configure(_ context.Context, req *networkv1.ConfigureRequest) (*networkv1.ConfigureResponse, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.config = slices.Clone(req.GetConfig())
	n.nodes = slices.Clone(req.GetNodes())
	n.served.Configure(req.GetNodes())
	n.configureCalls++
	return &networkv1.ConfigureResponse{}, nil
}

// Configured returns what the last Configure call gave, and how many
// Configure calls there were.
func (n *Network) Configured() (config []byte, nodes []string, calls int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.config), slices.Clone(n.nodes), n.configureCalls
}

// Status reports every served node ready, with the portMappings and
// ipRanges capabilities.
func (n *Network) Status(_ context.Context, req *networkv1.StatusRequest) (*networkv1.StatusResponse, error) {
	if err := n.checkNode(req.GetNode()); err != nil {
		return nil, err
	}
	return &networkv1.StatusResponse{Ready: true, NetworkName: "memory", Capabilities: []string{"portMappings", "ipRanges"}}, nil
}

// Add gives the attachment an address, or returns the result it has.
func (n *Network) Add(_ context.Context, req *networkv1.AddRequest) (*networkv1.Result, error) {
	key, err := n.key(req.GetNode(), req.GetAttachment())
	if err != nil {
		return nil, err
	}
	subnet := defaultSubnet
	if ranges := req.GetIpRanges(); len(ranges) > 0 && len(ranges[0].GetRanges()) > 0 {
		subnet, err = netip.ParsePrefix(ranges[0].GetRanges()[0].GetSubnet())
		if err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "ip_ranges[0].ranges[0].subnet: %v", err)
		}
	}

	n.mu.Lock()
	defer n.mu.Unlock()
	node := n.attachments[req.GetNode()]
	if node == nil {
		node = map[attachmentKey]*networkv1.Result{}
		n.attachments[req.GetNode()] = node
	}
	if res, ok := node[key]; ok {
		return proto.CloneOf(res), nil
	}
	n.next[req.GetNode()]++
	gateway := subnet.Masked().Addr().Next()
	addr := gateway
	for range n.next[req.GetNode()] {
		addr = addr.Next()
	}
	if !subnet.Contains(addr) {
		return nil, status.Errorf(codes.ResourceExhausted, "subnet %s is full", subnet)
	}
	res := &networkv1.Result{
		CniVersion: "1.1.0",
		Interfaces: []*networkv1.Interface{{Name: key.ifname, Sandbox: req.GetNetnsPath()}},
		Ips: []*networkv1.IPConfig{{
			Address:   netip.PrefixFrom(addr, subnet.Bits()).String(),
			Gateway:   gateway.String(),
			Interface: proto.Int32(0),
		}},
		Routes: []*networkv1.Route{{Dst: "0.0.0.0/0"}},
	}
	node[key] = res
	return proto.CloneOf(res), nil
}

// Del forgets the attachment; deleting an absent one succeeds.
func (n *Network) Del(_ context.Context, req *networkv1.DelRequest) (*networkv1.DelResponse, error) {
	key, err := n.key(req.GetNode(), req.GetAttachment())
	if err != nil {
		return nil, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.attachments[req.GetNode()], key)
	return &networkv1.DelResponse{}, nil
}

// Check succeeds for an attachment it has, and fails with NotFound for any
// other.
func (n *Network) Check(_ context.Context, req *networkv1.CheckRequest) (*networkv1.CheckResponse, error) {
	key, err := n.key(req.GetNode(), req.GetAttachment())
	if err != nil {
		return nil, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, ok := n.attachments[req.GetNode()][key]; !ok {
		return nil, status.Errorf(codes.NotFound, "no attachment %s/%s", key.containerID, key.ifname)
	}
	return &networkv1.CheckResponse{}, nil
}

// GC forgets every attachment of the node that is not in the valid list.
func (n *Network) GC(_ context.Context, req *networkv1.GCRequest) (*networkv1.GCResponse, error) {
	if err := n.checkNode(req.GetNode()); err != nil {
		return nil, err
	}
	valid := map[attachmentKey]bool{}
	for _, a := range req.GetValidAttachments() {
		valid[attachmentKey{a.GetContainerId(), a.GetIfname()}] = true
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	resp := &networkv1.GCResponse{}
	for key := range n.attachments[req.GetNode()] {
		if !valid[key] {
			delete(n.attachments[req.GetNode()], key)
			resp.Removed = append(resp.Removed, &networkv1.Attachment{ContainerId: key.containerID, Ifname: key.ifname})
		}
	}
	return resp, nil
}

// Attachments returns the attachments the node has, as "containerID/ifname".
func (n *Network) Attachments(node string) []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []string
	for key := range n.attachments[node] {
		out = append(out, key.containerID+"/"+key.ifname)
	}
	slices.Sort(out)
	return out
}

func (n *Network) key(node string, a *networkv1.Attachment) (attachmentKey, error) {
	if err := n.checkNode(node); err != nil {
		return attachmentKey{}, err
	}
	return attachmentKey{a.GetContainerId(), a.GetIfname()}, nil
}

func (n *Network) checkNode(node string) error {
	return n.served.Check(node)
}
