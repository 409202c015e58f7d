package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/fedlet/fedlet/plugins/version"
)

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print fedlet's version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintf(cmd.OutOrStdout(), "fedlet %s (kubelet API %s)\n", version.Version, version.Kubelet())
		},
	}
}
