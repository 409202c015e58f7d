// Command fedlet-log-driver writes a container's output to its log file; the
// runc shim starts it as `fedlet-log-driver log-driver FILE`. The containerd
// runtime plugin uses it when it lies beside the plugin's executable: being
// small, it starts faster than the plugin re-executed for the same job, and
// every container's creation waits for it.
package main

import (
	"fmt"
	"os"

	"github.com/fedlet/fedlet/plugins/runtime/containerd/logdriver"
)

func main() {
	if !logdriver.Is(os.Args) {
		fmt.Fprintln(os.Stderr, "usage: fedlet-log-driver log-driver FILE (the runc shim starts it; run by hand it does nothing)")
		os.Exit(2)
	}
	logdriver.Run(os.Args) // does not return
}
