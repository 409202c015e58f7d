package plugin

import (
	"fmt"

	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"google.golang.org/protobuf/proto"

	networkv1 "github.com/fedlet/fedlet/plugins/proto/network/v1"
)

// toProto converts a CNI result of any version to the protocol's Result,
// which mirrors CNI's 1.x result type.
func toProto(res types.Result) (*networkv1.Result, error) {
	r, err := types100.NewResultFromResult(res)
	if err != nil {
		return nil, fmt.Errorf("convert the CNI result (version %s): %w", res.Version(), err)
	}
	out := &networkv1.Result{CniVersion: r.CNIVersion}
	for _, i := range r.Interfaces {
		out.Interfaces = append(out.Interfaces, &networkv1.Interface{
			Name: i.Name, Mac: i.Mac, Mtu: int32(i.Mtu), Sandbox: i.Sandbox, SocketPath: i.SocketPath, PciId: i.PciID,
		})
	}
	for _, ip := range r.IPs {
		c := &networkv1.IPConfig{Address: ip.Address.String()}
		if ip.Gateway != nil {
			c.Gateway = ip.Gateway.String()
		}
		if ip.Interface != nil {
			c.Interface = proto.Int32(int32(*ip.Interface))
		}
		out.Ips = append(out.Ips, c)
	}
	for _, rt := range r.Routes {
		route := &networkv1.Route{Dst: rt.Dst.String(), Mtu: int32(rt.MTU), Advmss: int32(rt.AdvMSS), Priority: int32(rt.Priority)}
		if rt.GW != nil {
			route.Gw = rt.GW.String()
		}
		if rt.Table != nil {
			route.Table = proto.Int32(int32(*rt.Table))
		}
		if rt.Scope != nil {
			route.Scope = proto.Int32(int32(*rt.Scope))
		}
		out.Routes = append(out.Routes, route)
	}
	if d := r.DNS; len(d.Nameservers) > 0 || d.Domain != "" || len(d.Search) > 0 || len(d.Options) > 0 {
		out.Dns = &networkv1.DNS{Nameservers: d.Nameservers, Domain: d.Domain, Search: d.Search, Options: d.Options}
	}
	return out, nil
}

// addresses lists a result's addresses, for logs.
func addresses(r *networkv1.Result) []string {
	var out []string
	for _, ip := range r.GetIps() {
		out = append(out, ip.GetAddress())
	}
	return out
}
