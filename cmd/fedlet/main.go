// Command fedlet is the operator's CLI: it runs the agent, and brings up a
// local cluster with `fedlet up`.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func main() {
	root := &cobra.Command{
		Use:           "fedlet",
		Short:         "A federating node agent for Kubernetes",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newAgentCommand(), newUpCommand(), newMemberCommand(), newPluginCommand(), newVersionCommand())
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "fedlet:", err)
		os.Exit(1)
	}
}
