package plugin

import (
	"encoding/json"
)

// DefaultNetworkName is the CNI network name of DefaultConflist.
const DefaultNetworkName = "fedlet"

// DefaultConflist returns the network configuration list the local cluster
// uses (cniVersion 1.1.0, for STATUS and GC):
//
//   - bridge: pods on the Linux bridge named bridge, which is their gateway
//     (isGateway) and masquerades their traffic to anywhere outside the pod
//     network (ipMasq, with nftables rules, which need the nft command), so
//     pods reach the host and beyond; hairpin mode lets a pod reach itself
//     through a Service address;
//   - host-local: one address per pod from the node's pod CIDR, which the
//     agent passes at each Add (runtime config "ipRanges"), kept in dataDir
//     (a directory of fedlet's own, not /var/lib/cni/networks), with a
//     default route through the bridge;
//   - portmap: the pods' host ports (runtime config "portMappings").
//
// The binaries it needs are bridge, host-local and portmap.
func DefaultConflist(bridge, dataDir string) []byte {
	list := map[string]any{
		"cniVersion": "1.1.0",
		"name":       DefaultNetworkName,
		"plugins": []any{
			map[string]any{
				"type":      "bridge",
				"bridge":    bridge,
				"isGateway": true,
				"ipMasq":    true,
				// nftables rules are removed by attachment, even when the
				// pod's interface is already gone; bridge's iptables backend
				// then keeps a rule that makes every later DEL fail.
				"ipMasqBackend": "nftables",
				"hairpinMode":   true,
				"capabilities":  map[string]bool{"ipRanges": true},
				"ipam": map[string]any{
					"type":    "host-local",
					"dataDir": dataDir,
					"routes":  []any{map[string]string{"dst": "0.0.0.0/0"}},
				},
			},
			map[string]any{
				"type":         "portmap",
				"capabilities": map[string]bool{"portMappings": true},
			},
		},
	}
	out, err := json.MarshalIndent(list, "", "  ")
	if err != nil {
		panic("marshal the default conflist: " + err.Error()) // only maps of plain values
	}
	return append(out, '\n')
}
