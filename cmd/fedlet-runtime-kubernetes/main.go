// Command fedlet-runtime-kubernetes is fedlet's runtime plugin for member
// clusters: each virtual node it serves stands for a whole Kubernetes
// cluster, and the pods bound to the node run there. The agent launches
// it; run by hand it only says so.
package main

import (
	"github.com/fedlet/fedlet/plugins/runtime/kubernetes"
	"github.com/fedlet/fedlet/plugins/sdk"
)

func main() {
	b := kubernetes.New(kubernetes.Options{})
	defer b.Close()
	sdk.ServeRuntime(b, sdk.WithDescription(kubernetes.Description()))
}
