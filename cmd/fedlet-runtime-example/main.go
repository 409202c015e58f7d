// Command fedlet-runtime-example is the example runtime plugin
// (plugins/runtime/example): containers run with runc, images pulled
// without a daemon. The agent launches it; run by hand it only says so.
//
// It also runs the supervisors of its containers (plugins/sdk/keeper),
// started again from this executable: keeper.Main dispatches that mode
// before anything else.
package main

import (
	"github.com/fedlet/fedlet/plugins/runtime/example"
	"github.com/fedlet/fedlet/plugins/sdk"
	"github.com/fedlet/fedlet/plugins/sdk/keeper"
)

func main() {
	keeper.Main()
	sdk.ServeRuntime(example.New())
}
