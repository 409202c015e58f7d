// Package version says which fedlet this is.
package version

// Version is fedlet's own version, set at build time with
// -ldflags "-X github.com/fedlet/fedlet/plugins/version.Version=...".
var Version = "0.1.0-dev"

// Kubelet is what fedlet's Nodes report as nodeInfo.kubeletVersion: the
// Kubernetes version whose kubelet API fedlet serves, with fedlet's own
// version as a semver pre-release so tools that parse it keep working.
func Kubelet() string { return "v1.37.1-fedlet." + Version }
