// Package federation tests a hub cluster federating pods into a member
// cluster end to end, started by the same code as `fedlet up --members 1`:
// member-1, a whole cluster with its own containerd node, behind the
// virtual node member-1 of the hub's agent, served by the kubernetes
// runtime plugin.
package federation

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fedlet/fedlet/integration/cluster"
	"github.com/fedlet/fedlet/plugins/sdk/testenv"
)

// hub is the cluster every test of the package shares; member is its one
// member cluster.
var (
	hub    *cluster.Cluster
	member *cluster.Cluster
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if os.Geteuid() != 0 {
		if !testenv.SkipAllowed() {
			fmt.Fprintf(os.Stderr, "federation: these tests need root (containerd, runc, network namespaces): failing (%s=1 skips them, outside CI)\n", testenv.SkipMissingEnv)
			return 1
		}
		fmt.Fprintf(os.Stderr, "federation: not root; skipping the federation tests (%s=1)\n", testenv.SkipMissingEnv)
		return 0
	}
	wd, _ := os.Getwd()
	root, ok := cluster.FindSourceRoot(wd)
	if !ok {
		fmt.Fprintln(os.Stderr, "federation: cannot find the fedlet source tree")
		return 1
	}
	dataDir, err := os.MkdirTemp("", "fedlet-federation-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "federation:", err)
		return 1
	}
	defer os.RemoveAll(dataDir)
	ports, err := cluster.FreePorts()
	if err != nil {
		fmt.Fprintln(os.Stderr, "federation:", err)
		return 1
	}
	ctx := context.Background()
	// Two clusters, one after the other, on two cores.
	startCtx, cancel := context.WithTimeout(ctx, 6*time.Minute)
	defer cancel()
	hub, err = cluster.Start(startCtx, cluster.Options{
		DataDir:  dataDir,
		BinDir:   filepath.Join(root, "bin"),
		Ports:    ports,
		Members:  1,
		Progress: os.Stderr,
	})
	if err != nil {
		// A missing bin/fedlet-runtime-kubernetes, or an agent that cannot
		// serve a virtual node yet, fails here, and says so.
		fmt.Fprintln(os.Stderr, "federation: start the hub and member-1:", err)
		dumpLogs(dataDir)
		return 1
	}
	member = hub.Members()[0]
	code := m.Run()
	if code != 0 {
		dumpLogs(dataDir)
	}
	stopCtx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	if err := hub.Stop(stopCtx); err != nil {
		fmt.Fprintln(os.Stderr, "federation: stop the clusters:", err)
		code = 1
	}
	return code
}

// dumpLogs prints the end of the hub's agent log (where the kubernetes
// plugin's output goes too) and of the member's, which is what a failing
// test most often needs.
func dumpLogs(dataDir string) {
	for _, dir := range []string{dataDir, filepath.Join(cluster.PathsFor(dataDir).Members, cluster.MemberName(1))} {
		path := filepath.Join(cluster.PathsFor(dir).Logs, "agent.log")
		data, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		if len(data) > 15000 {
			data = data[len(data)-15000:]
		}
		fmt.Fprintf(os.Stderr, "---- end of %s ----\n%s\n", path, data)
	}
}
