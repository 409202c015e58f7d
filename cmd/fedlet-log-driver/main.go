// Command fedlet-log-driver writes a container's output to its log file; the
// runc shim starts it as `fedlet-log-driver log-driver FILE`, and for a
// container with stdin the plugin starts it as a stdio keeper. The containerd
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
	switch {
	case logdriver.Is(os.Args):
		logdriver.Run(os.Args) // does not return
	case logdriver.IsStdio(os.Args):
		logdriver.RunStdio(os.Args) // does not return
	}
	fmt.Fprintln(os.Stderr, "usage: fedlet-log-driver log-driver FILE | stdio DIR FILE [once] (the runc shim or the runtime plugin starts it; run by hand it does nothing)")
	os.Exit(2)
}
