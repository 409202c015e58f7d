package cluster

import (
	"fmt"
	"os/exec"
	"strings"
)

// removePortmapChains removes the base chains CNI's portmap plugin makes
// in the nat table at its first host port and never removes, once no pod's
// host port is left in them (another runtime's pods may still use them).
func removePortmapChains() error {
	out, err := exec.Command("iptables", "-t", "nat", "-S", "CNI-HOSTPORT-DNAT").Output()
	if err != nil {
		return nil // no such chain: nothing to do
	}
	if strings.Contains(string(out), "-A CNI-HOSTPORT-DNAT") {
		return nil // host ports still published
	}
	steps := [][]string{
		{"-D", "PREROUTING", "-m", "addrtype", "--dst-type", "LOCAL", "-j", "CNI-HOSTPORT-DNAT"},
		{"-D", "OUTPUT", "-m", "addrtype", "--dst-type", "LOCAL", "-j", "CNI-HOSTPORT-DNAT"},
		{"-D", "POSTROUTING", "-m", "comment", "--comment", "CNI portfwd requiring masquerade", "-j", "CNI-HOSTPORT-MASQ"},
		{"-F", "CNI-HOSTPORT-MASQ"}, {"-F", "CNI-HOSTPORT-SETMARK"},
		{"-X", "CNI-HOSTPORT-DNAT"}, {"-X", "CNI-HOSTPORT-MASQ"}, {"-X", "CNI-HOSTPORT-SETMARK"},
	}
	var failed []string
	for _, s := range steps {
		if out, err := exec.Command("iptables", append([]string{"-t", "nat"}, s...)...).CombinedOutput(); err != nil {
			failed = append(failed, fmt.Sprintf("iptables %s: %s", strings.Join(s, " "), strings.TrimSpace(string(out))))
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("remove portmap's chains: %s", strings.Join(failed, "; "))
	}
	return nil
}
