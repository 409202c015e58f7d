// Command bench measures how fast pods start on a fedlet containerd node,
// against the floor of the same containers started directly through the
// containerd client, in the same run on the same machine.
//
//	go run ./integration/bench [-pods 50]
//	go run ./integration/bench -federation [-pods 100]
//
// It starts its own local cluster (as `fedlet up` does) on free ports.
// With -federation it starts a hub and one member cluster (as `fedlet up
// --members 1` does) and measures pods going from the hub to the member
// against the same pods created in the member directly.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/fedlet/fedlet/integration/cluster"
)

func main() {
	pods := flag.Int("pods", 50, "pods (and floor containers) per latency and churn measurement")
	memory := flag.String("memory", "100,500", "running-pod counts at which to measure the agent's memory")
	federation := flag.Bool("federation", false, "measure pods federated into a member cluster instead")
	flag.Parse()
	if *federation {
		if err := runFederation(*pods); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	levels, err := parseLevels(*memory)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench: -memory:", err)
		os.Exit(2)
	}
	if err := run(*pods, levels); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// clusterOptions are the options of a cluster of the benchmark: from the
// source tree's bin/, in a fresh data directory (cleanup removes it), on
// free ports.
func clusterOptions() (opts cluster.Options, cleanup func(), err error) {
	wd, _ := os.Getwd()
	root, ok := cluster.FindSourceRoot(wd)
	if !ok {
		return opts, nil, fmt.Errorf("run from the fedlet source tree")
	}
	dataDir, err := os.MkdirTemp("", "fedlet-bench-")
	if err != nil {
		return opts, nil, err
	}
	ports, err := cluster.FreePorts()
	if err != nil {
		os.RemoveAll(dataDir)
		return opts, nil, err
	}
	return cluster.Options{DataDir: dataDir, BinDir: filepath.Join(root, "bin"), Ports: ports}, func() { os.RemoveAll(dataDir) }, nil
}

func run(n int, memoryLevels []int) error {
	opts, cleanup, err := clusterOptions()
	if err != nil {
		return err
	}
	defer cleanup()
	ctx := context.Background()
	fmt.Println("starting a local cluster…")
	c, err := cluster.Start(ctx, opts)
	if err != nil {
		return fmt.Errorf("start cluster: %w", err)
	}
	defer func() {
		stopCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		_ = c.Stop(stopCtx)
	}()

	rest := c.RESTConfig()
	rest.QPS, rest.Burst = 1000, 2000
	client, err := kubernetes.NewForConfig(rest)
	if err != nil {
		return err
	}
	b := &bench{cluster: c, client: client, n: n, binDir: opts.BinDir}
	if err := b.warmUp(ctx); err != nil {
		return err
	}
	// Each figure is printed as soon as it is measured, so that a later
	// failure loses none.
	floor, err := b.floor(ctx)
	if err != nil {
		return fmt.Errorf("floor: %w", err)
	}
	serial, err := b.podsOneAtATime(ctx)
	if err != nil {
		return fmt.Errorf("pods one at a time: %w", err)
	}
	burst, err := b.podsAtOnce(ctx)
	if err != nil {
		return fmt.Errorf("pods at once: %w", err)
	}
	b.reportStartup(floor, serial, burst)
	cniFloor, cniPlugin, err := b.cniAdd(ctx)
	if err != nil {
		return fmt.Errorf("CNI ADD: %w", err)
	}
	b.reportCNI(floor, serial, cniFloor, cniPlugin)
	floorRate, err := b.floorChurn(ctx)
	if err != nil {
		return fmt.Errorf("floor churn: %w", err)
	}
	hostRate, err := b.podChurn(ctx, "churn-host", hostNetwork)
	if err != nil {
		return fmt.Errorf("pod churn on the host network: %w", err)
	}
	podRate, err := b.podChurn(ctx, "churn")
	if err != nil {
		return fmt.Errorf("pod churn: %w", err)
	}
	b.reportChurn(floorRate, hostRate, podRate)
	for _, level := range memoryLevels {
		m, err := b.memoryAt(ctx, level)
		if err != nil {
			return fmt.Errorf("memory with %d pods: %w", level, err)
		}
		reportMemory(m)
	}
	return nil
}

func parseLevels(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%q is not a pod count", f)
		}
		out = append(out, n)
	}
	return out, nil
}
