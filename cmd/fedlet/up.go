package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/fedlet/fedlet/integration/cluster"
)

func newUpCommand() *cobra.Command {
	var (
		dataDir, binDir, datastore, until string
		members                           int
	)
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Bring up a local Kubernetes cluster with a fedlet node on this machine",
		Long: `Bring up a whole Kubernetes cluster on this machine, on loopback: the datastore
(kine on SQLite by default, or etcd), kube-apiserver, kube-controller-manager,
kube-scheduler, an OCI registry on 127.0.0.1:5000 seeded with a busybox image,
containerd, a fedlet agent serving the node "fedlet-node", kube-proxy
(iptables) and CoreDNS, which answers for cluster.local at the Service address
10.0.0.10. It runs until interrupted (Ctrl-C or SIGTERM), then stops
everything, removes every container it ran and kube-proxy's iptables rules.

Missing components are built with make when the fedlet source tree is found
(beside this executable or above the working directory); the first build of
the control plane takes about ten minutes.

With --members N it first starts N member clusters, member-1 … member-N,
each a whole cluster of its own up to its agent (datastore, control plane,
registry, containerd, one containerd node "member-I-node"), on free ports,
with pods in 10.(244+I).0.0/16 on the bridge fedlet<I>, under
DIR/members/member-I (admin kubeconfig: DIR/members/member-I/kubeconfig).
The cluster above, the hub, then serves one virtual node per member, named
after it, labelled fedlet.io/member=member-I and tainted
virtual-kubelet.io/provider=fedlet:NoSchedule: a pod that tolerates the taint
and selects the label runs in that member, through the kubernetes runtime
plugin. kube-proxy and CoreDNS are the hub's only: they program and answer
for the whole machine.

Everything is kept in the data directory (default $HOME/.local/share/fedlet):
pki/ (CA, certificates, kubeconfigs), kubeconfig (admin), kine/ or etcd/,
registry/, containerd/, logs/<component>.log. Running it again on the same
directory brings back the same cluster, with its objects. While the cluster is
up, the file "ready" in it holds the admin kubeconfig's path.

containerd, runc and kube-proxy need root.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			part, err := cluster.ParsePart(until)
			if err != nil {
				return fmt.Errorf("--until: %w", err)
			}
			opts := cluster.Options{
				DataDir:      dataDir,
				BinDir:       binDir,
				Datastore:    cluster.Datastore(datastore),
				Until:        part,
				Members:      members,
				BuildMissing: true,
				Progress:     cmd.OutOrStdout(),
			}
			return runUp(cmd.Context(), opts, cmd.OutOrStdout())
		},
	}
	defaultData, err := cluster.DefaultDataDir()
	if err != nil {
		defaultData = ""
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", defaultData, "directory holding the cluster's state, certificates and logs")
	cmd.Flags().StringVar(&binDir, "bin-dir", executableDir(), "directory of the components (kube-apiserver, kine, containerd, ...)")
	cmd.Flags().StringVar(&datastore, "datastore", string(cluster.DatastoreSQLite), "datastore behind the API server: sqlite (kine) or etcd")
	cmd.Flags().StringVar(&until, "until", cluster.PartNetwork.String(),
		"start the parts up to this one only: "+strings.Join(cluster.PartNames(), ", "))
	cmd.Flags().IntVar(&members, "members", 0,
		"start this many member clusters (member-1 … member-N), each behind a virtual node of this cluster's agent")
	return cmd
}

// executableDir is the directory of the running fedlet, where `make`
// puts the components beside it.
func executableDir() string {
	exe, err := os.Executable()
	if err != nil {
		return ""
	}
	if resolved, err := filepath.EvalSymlinks(exe); err == nil {
		exe = resolved
	}
	return filepath.Dir(exe)
}

// runUp starts the cluster, tells the user how to use it, and keeps it up
// until a signal arrives or a component dies.
func runUp(ctx context.Context, opts cluster.Options, out io.Writer) error {
	ctx, stopSignals := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stopSignals()
	if exe, err := os.Executable(); err == nil {
		// The agent is this very program.
		opts.FedletBinary = exe
	}

	c, err := cluster.Start(ctx, opts)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("interrupted while starting (everything started was stopped): %w", err)
		}
		return err
	}
	printUsage(out, c, opts.Until)

	var runErr error
	select {
	case <-ctx.Done():
		fmt.Fprintln(out, "\nstopping the cluster (Ctrl-C again to abandon it)…")
	case err := <-c.Failed():
		runErr = err
		var exit *cluster.ExitError
		if errors.As(err, &exit) && exit.Tail != "" {
			fmt.Fprintf(out, "\n%s exited; the end of %s:\n%s\n", exit.Name, exit.Log, exit.Tail)
		}
		fmt.Fprintf(out, "\n%v\nstopping the cluster…\n", err)
	}
	// From here a second signal ends fedlet up at once (its children die with it).
	stopSignals()
	stopCtx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := c.Stop(stopCtx); err != nil {
		return errors.Join(runErr, fmt.Errorf("stop: %w", err))
	}
	fmt.Fprintln(out, "stopped.")
	return runErr
}

func printUsage(out io.Writer, c *cluster.Cluster, until cluster.Part) {
	p := c.Paths()
	fmt.Fprintf(out, "\nThe cluster is up. Its data and logs are in %s.\n", p.DataDir)
	fmt.Fprintf(out, "  kubeconfig: %s\n", c.Kubeconfig())
	if until >= cluster.PartRegistry {
		fmt.Fprintf(out, "  image:      %s\n", c.Image())
	}
	if until >= cluster.PartNetwork {
		fmt.Fprintf(out, "  dns:        %s:53 (%s), from pods and this machine\n", cluster.ClusterDNS, cluster.ClusterDomain)
	}
	fmt.Fprintf(out, "\nTry it (this kubectl is the server's version; Debian's is older):\n")
	fmt.Fprintf(out, "  export KUBECONFIG=%s\n", c.Kubeconfig())
	if until >= cluster.PartAgent {
		fmt.Fprintf(out, "  %s run hello --image=%s --restart=Never -- echo hello from fedlet\n", c.Kubectl(), c.Image())
		fmt.Fprintf(out, "  %s logs hello\n", c.Kubectl())
	} else {
		fmt.Fprintf(out, "  %s get --raw /readyz\n", c.Kubectl())
	}
	printMembers(out, c)
	fmt.Fprintf(out, "\nPress Ctrl-C to stop it; `fedlet up` again brings it back.\n")
}

// printMembers says where the member clusters are and how to send a pod to one.
func printMembers(out io.Writer, c *cluster.Cluster) {
	members := c.Members()
	if len(members) == 0 {
		return
	}
	fmt.Fprintf(out, "\nMember clusters, each behind a virtual node of the same name:\n")
	for _, m := range members {
		fmt.Fprintf(out, "  %-10s kubeconfig %s, pods in %s\n", m.Name(), m.Kubeconfig(), m.PodNetwork().CIDR)
	}
	first := members[0].Name()
	fmt.Fprintf(out, "\nRun a pod in %s from the hub:\n", first)
	fmt.Fprintf(out, "  %s run remote --image=%s --restart=Never --overrides='%s' -- sh -c 'echo hello from %s; sleep 3600'\n",
		c.Kubectl(), c.Image(), memberOverrides(first), first)
	fmt.Fprintf(out, "  %s get pod remote -o wide\n", c.Kubectl())
	fmt.Fprintf(out, "  %s --kubeconfig %s get pods -A -o wide\n", c.Kubectl(), members[0].Kubeconfig())
}

// memberOverrides is the pod spec patch for kubectl run --overrides that
// sends a pod to a member's virtual node.
func memberOverrides(member string) string {
	return fmt.Sprintf(`{"spec":{"nodeSelector":{%q:%q},"tolerations":[{"key":%q,"operator":"Equal","value":%q,"effect":"NoSchedule"}]}}`,
		cluster.MemberLabel, member, cluster.VirtualNodeTaintKey, cluster.VirtualNodeTaintValue)
}
