// Command fedlet-runtime-containerd is fedlet's runtime plugin for a
// containerd host. The agent launches it; run by hand it only says so.
//
// The runc shim starts fedlet-log-driver, found beside this executable, to
// write a container's logs. Without it, the shim starts this executable
// instead, as `fedlet-runtime-containerd log-driver FILE`: that mode is
// dispatched before anything else.
package main

import (
	"os"

	"github.com/fedlet/fedlet/plugins/runtime/containerd"
	"github.com/fedlet/fedlet/plugins/sdk"
)

func main() {
	if containerd.IsLogDriver(os.Args) {
		containerd.RunLogDriver(os.Args) // does not return
	}
	b := containerd.New(containerd.Options{})
	defer b.Close()
	sdk.ServeRuntime(b, sdk.WithDescription(containerd.Description()))
}
