// Package e2e tests fedlet end to end against the real stack, started by the
// same code as `fedlet up`: kube-apiserver on kine (SQLite), the scheduler
// and controller-manager, a registry, containerd with runc, and the agent.
package e2e

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

// env is the cluster every test of the package shares.
var (
	env         *cluster.Cluster
	ports       cluster.Ports
	clusterOpts cluster.Options
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if os.Geteuid() != 0 {
		if !testenv.SkipAllowed() {
			fmt.Fprintf(os.Stderr, "e2e: these tests need root (containerd, runc, network namespaces): failing (%s=1 skips them, outside CI)\n", testenv.SkipMissingEnv)
			return 1
		}
		fmt.Fprintf(os.Stderr, "e2e: not root; skipping the end-to-end tests (%s=1)\n", testenv.SkipMissingEnv)
		return 0
	}
	wd, _ := os.Getwd()
	root, ok := cluster.FindSourceRoot(wd)
	if !ok {
		fmt.Fprintln(os.Stderr, "e2e: cannot find the fedlet source tree")
		return 1
	}
	dataDir, err := os.MkdirTemp("", "fedlet-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	ports, err = cluster.FreePorts()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	ctx := context.Background()
	startCtx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	clusterOpts = cluster.Options{
		DataDir:  dataDir,
		BinDir:   filepath.Join(root, "bin"),
		Ports:    ports,
		Progress: os.Stderr,
	}
	env, err = cluster.Start(startCtx, clusterOpts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: start the cluster:", err)
		dumpLogs(dataDir)
		return 1
	}
	code := m.Run()
	if code != 0 {
		dumpLogs(dataDir)
	}
	stopCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := env.Stop(stopCtx); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: stop the cluster:", err)
		code = 1
	}
	os.RemoveAll(dataDir)
	return code
}

// dumpLogs prints the end of the agent's log, which is what a failing test
// most often needs.
func dumpLogs(dataDir string) {
	path := filepath.Join(cluster.PathsFor(dataDir).Logs, "agent.log")
	data, err := os.ReadFile(path)
	if err != nil {
		return
	}
	if len(data) > 20000 {
		data = data[len(data)-20000:]
	}
	fmt.Fprintf(os.Stderr, "---- end of %s ----\n%s\n", path, data)
}
