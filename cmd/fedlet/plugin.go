package main

import (
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"regexp"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/fedlet/fedlet/plugins/conformance"
)

func newPluginCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "plugin",
		Short: "Tools for plugin authors",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newConformCommand())
	return cmd
}

func newConformCommand() *cobra.Command {
	var (
		configPath, image, node, checksum, run, logLevel string
		timeout                                          time.Duration
		rules                                            bool
		csiCase                                          bool
		csiCheck                                         = csiConform{volumeSize: 64 << 20}
	)
	cmd := &cobra.Command{
		Use:   "conform PLUGIN-BINARY",
		Short: "Check that a runtime plugin follows the runtime protocol, or a CSI driver the CSI specification",
		Long: `Launch a runtime plugin binary through the agent's plugin host (go-plugin,
AutoMTLS, handshake, protocol version negotiation, Describe, Configure) and
run the conformance checks against it, one protocol rule each.

The suite follows what the plugin declares in Describe. A container-level
plugin is checked on sandboxes, images, containers and their attempts, exits,
logs, stopping, exec, attach, port-forward, adoption after the plugin is
killed and restarted, and refusal of bad input. A plugin with
CAPABILITY_WHOLE_PODS (the kubernetes plugin: a member cluster) is checked on
CreatePod, DeletePod, ListPods and WatchPods, the logs, exec, attach and
port-forward of the pods it runs, adoption after a restart and bad input; its
container-level calls must answer Unimplemented.

Each check makes its own pods, with random UIDs, and removes them. The plugin
serves one node (--node), with the JSON config of --config. The image must
run 'sh -c' with echo, sleep, trap, cat and busybox's httpd: busybox does.

Prints PASS or FAIL for each check with the reason, then "N passed, M
failed"; exits with status 1 when any check failed.

With --csi the binary is a CSI driver (a storage plugin, or any driver that
serves a kubelet): it is started with --endpoint unix://<socket> and the
--driver-arg values, and the CSI project's conformance suite, csi-sanity
(github.com/kubernetes-csi/csi-test/v5, built into bin/ by make build), runs
against that endpoint, with real stages and mounts in a temporary directory
(root, for most drivers). Its report is printed; the command fails when a
spec fails.`,
		Example: `  fedlet plugin conform ./bin/fedlet-runtime-containerd --config containerd.json \
      --image 127.0.0.1:5000/fedlet/busybox:1
  fedlet plugin conform ./bin/fedlet-runtime-kubernetes --config members.json \
      --node member-1 --image 127.0.0.1:5000/fedlet/busybox:1 --timeout 3m
  fedlet plugin conform --csi ./bin/fedlet-csi-local --driver-arg=--state-dir=/tmp/csi-state`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if csiCase {
				ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
				defer stop()
				csiCheck.driver, csiCheck.timeout = args[0], timeout
				return csiCheck.run(ctx, cmd.OutOrStdout(), cmd.ErrOrStderr())
			}
			cfg := conformance.Config{
				Plugin:   args[0],
				Checksum: checksum,
				Node:     node,
				Image:    image,
				Timeout:  timeout,
			}
			if configPath != "" {
				data, err := os.ReadFile(configPath)
				if err != nil {
					return fmt.Errorf("--config: %w", err)
				}
				cfg.PluginConfig = data
			}
			if run != "" {
				re, err := regexp.Compile(run)
				if err != nil {
					return fmt.Errorf("--run: %w", err)
				}
				cfg.Run = re
			}
			if logLevel != "" {
				var lvl slog.Level
				if err := lvl.UnmarshalText([]byte(logLevel)); err != nil {
					return fmt.Errorf("--plugin-log %q: expected debug, info, warn or error", logLevel)
				}
				cfg.Log = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: lvl}))
			}

			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			out := cmd.OutOrStdout()
			res := conformance.Run(ctx, cfg, conformance.TextReporter(out, rules))
			fmt.Fprintln(out, res.Summary())
			if !res.OK() {
				if len(res.Outcomes) == 0 {
					return fmt.Errorf("no check matches --run %q", run)
				}
				return fmt.Errorf("%d of %d conformance checks failed", res.Failed(), len(res.Outcomes))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&configPath, "config", "", "the plugin's config, a JSON file, handed to Configure")
	f.StringVar(&image, "image", "docker.io/library/busybox:latest", "an image the backend can pull and run: a POSIX shell and the commands docs/plugins.md lists (busybox has them all)")
	f.StringVar(&node, "node", conformance.DefaultNode, "the node every call names")
	f.DurationVar(&timeout, "timeout", conformance.DefaultTimeout, "bound on each call, and on each wait for a container or a whole pod to reach a state")
	f.StringVar(&checksum, "checksum", "", `pin the binary, as the agent's plugins.checksums does: "sha256:<64 hex digits>"`)
	f.StringVar(&run, "run", "", "run only the checks whose names match this regular expression")
	f.StringVar(&logLevel, "plugin-log", "", "show the plugin host's and the plugin's log on stderr from this level (debug, info, warn, error)")
	f.BoolVar(&rules, "rules", false, "show the rule each passed check verifies, too")
	f.BoolVar(&csiCase, "csi", false, "the binary is a CSI driver: run csi-sanity against it (the flags below apply)")
	f.StringArrayVar(&csiCheck.args, "driver-arg", nil, "with --csi: an argument for the driver, after --endpoint (repeatable)")
	f.StringVar(&csiCheck.sanity, "csi-sanity", "", "with --csi: the csi-sanity binary (default: beside fedlet, else on PATH)")
	f.Int64Var(&csiCheck.volumeSize, "volume-size", csiCheck.volumeSize, "with --csi: the size of the volumes csi-sanity makes, in bytes")
	return cmd
}
