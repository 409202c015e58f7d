// Package boundary keeps the arrows pointing one way: what plugin authors
// build on (the protocols, the SDK, the plugin host, the conformance kit)
// and every backend fedlet ships (plugins/, cni/, csi/, observability/)
// never import the agent (core/) or the end-to-end tests (integration/).
//
// It holds no code, only the test that checks this over `go list`, so that
// the unit tests of `make test` fail when an arrow runs back up.
package boundary

// Module is the main module's path; the forbidden trees are below it.
const Module = "github.com/fedlet/fedlet"

// Checked are the trees that must not import Forbidden, as `go list`
// patterns relative to the module's root. A tree that does not exist yet
// (csi/, observability/ before their families land) is skipped.
var Checked = []string{"./plugins/...", "./cni/...", "./csi/...", "./observability/..."}

// Forbidden are the trees nothing in Checked may import, with or without
// tests.
var Forbidden = []string{Module + "/core", Module + "/integration"}
