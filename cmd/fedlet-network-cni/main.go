// Command fedlet-network-cni is fedlet's CNI network plugin: it attaches
// pods to a node's network by running the standard CNI plugins (bridge,
// host-local, portmap, ...) that its conflist names. The agent launches it;
// run by hand it only says so. Its configuration is described by
// github.com/fedlet/fedlet/cni/plugin.Config.
package main

import (
	"github.com/fedlet/fedlet/cni/plugin"
	"github.com/fedlet/fedlet/plugins/sdk"
)

func main() {
	sdk.ServeNetwork(plugin.New(nil), sdk.WithDescription(plugin.Description()))
}
