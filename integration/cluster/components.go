package cluster

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// modulePath identifies the fedlet source tree, which can build what is missing.
const modulePath = "github.com/fedlet/fedlet"

// makeTarget is the target of the fedlet Makefile that builds a component
// into $(BIN). File targets are given relative to BIN and made absolute.
var makeTarget = map[string]string{
	"kube-apiserver":            "controlplane",
	"kube-scheduler":            "controlplane",
	"kube-controller-manager":   "controlplane",
	"kubectl":                   "controlplane",
	"kube-proxy":                "controlplane",
	"coredns":                   "$(BIN)/coredns",
	"kine":                      "$(BIN)/kine",
	"etcd":                      "$(BIN)/etcd",
	"containerd":                "$(BIN)/containerd",
	"containerd-shim-runc-v2":   "$(BIN)/containerd",
	"registry":                  "$(BIN)/registry",
	"fedlet":                    "build",
	"fedlet-runtime-containerd": "build",
	"fedlet-log-driver":         "build",
	kubernetesPlugin:            "build",
	networkPlugin:               "build",
	"cni/bridge":                "cni-plugins",
	"cni/host-local":            "cni-plugins",
	"cni/loopback":              "cni-plugins",
	"cni/portmap":               "cni-plugins",
}

// requiredComponents are the binaries the parts up to opts.Until run.
func requiredComponents(opts Options) []string {
	var names []string
	if opts.Datastore == DatastoreEtcd {
		names = append(names, "etcd")
	} else {
		names = append(names, "kine")
	}
	if opts.Until >= PartAPIServer {
		// kubectl is not run by fedlet up; it is what the user is told to run.
		names = append(names, "kube-apiserver", "kubectl")
	}
	if opts.Until >= PartControllers {
		names = append(names, "kube-controller-manager", "kube-scheduler")
	}
	if opts.Until >= PartRegistry {
		names = append(names, "registry")
	}
	if opts.Until >= PartContainerd {
		names = append(names, "containerd", "containerd-shim-runc-v2")
	}
	if opts.Until >= PartAgent {
		// The members runtime is always configured (fedlet member add).
		names = append(names, "fedlet-runtime-containerd", "fedlet-log-driver", networkPlugin, kubernetesPlugin,
			"cni/bridge", "cni/host-local", "cni/loopback", "cni/portmap")
	}
	if opts.Until >= PartNetwork {
		names = append(names, "kube-proxy", "coredns")
	}
	return names
}

// missingComponents are the names that are not executable files in binDir.
func missingComponents(binDir string, names []string) []string {
	var missing []string
	for _, n := range names {
		fi, err := os.Stat(filepath.Join(binDir, n))
		if err != nil || fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
			missing = append(missing, n)
		}
	}
	return missing
}

// makeTargets are the Makefile targets that build the missing components
// into binDir, each once, in a stable order.
func makeTargets(binDir string, missing []string) []string {
	var targets []string
	for _, n := range missing {
		t := strings.Replace(makeTarget[n], "$(BIN)", binDir, 1)
		if t != "" && !slices.Contains(targets, t) {
			targets = append(targets, t)
		}
	}
	return targets
}

// makeCommand is the command line that builds targets from the tree at root.
func makeCommand(root, binDir string, targets []string) []string {
	return append([]string{"make", "-C", root, "BIN=" + binDir}, targets...)
}

// FindSourceRoot walks up from each start directory to the first go.mod
// whose module is github.com/fedlet/fedlet, and returns its directory.
func FindSourceRoot(starts ...string) (string, bool) {
	for _, start := range starts {
		for dir := start; ; dir = filepath.Dir(dir) {
			if isFedletModule(filepath.Join(dir, "go.mod")) {
				return dir, true
			}
			if filepath.Dir(dir) == dir {
				break
			}
		}
	}
	return "", false
}

func isFedletModule(goMod string) bool {
	f, err := os.Open(goMod)
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 2 && fields[0] == "module" {
			return strings.Trim(fields[1], `"`) == modulePath
		}
	}
	return false
}

// sourceRootStarts are where FindSourceRoot looks: beside the running
// executable, and the working directory.
func sourceRootStarts() []string {
	var starts []string
	if exe, err := os.Executable(); err == nil {
		if exe, err = filepath.EvalSymlinks(exe); err == nil {
			starts = append(starts, filepath.Dir(exe))
		}
	}
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	return starts
}

// ensureComponents makes sure every binary the cluster runs is in the bin
// directory, building the missing ones with make when allowed and possible.
func ensureComponents(ctx context.Context, opts Options) error {
	names := requiredComponents(opts)
	if opts.Until >= PartContainerd {
		if _, err := exec.LookPath("runc"); err != nil {
			return fmt.Errorf("runc is not on PATH; containerd needs it: apt-get install runc")
		}
	}
	if opts.Until >= PartNetwork {
		for _, tool := range []string{"iptables", "iptables-restore", "conntrack"} {
			if _, err := exec.LookPath(tool); err != nil {
				return fmt.Errorf("%s is not on PATH; kube-proxy needs it: apt-get install iptables conntrack", tool)
			}
		}
	}
	missing := missingComponents(opts.BinDir, names)
	if len(missing) == 0 {
		return nil
	}
	targets := makeTargets(opts.BinDir, missing)
	root, found := FindSourceRoot(sourceRootStarts()...)
	if !opts.BuildMissing || !found {
		how := strings.Join(makeCommand("<fedlet source tree>", opts.BinDir, targets), " ")
		if found {
			how = strings.Join(makeCommand(root, opts.BinDir, targets), " ")
		}
		return fmt.Errorf("missing from %s: %s; build them with: %s",
			opts.BinDir, strings.Join(missing, ", "), how)
	}

	note := ""
	if slices.Contains(targets, "controlplane") {
		note = " (first build of the control plane takes ~10 minutes)"
	}
	fmt.Fprintf(opts.Progress, "building %s%s…\n", strings.Join(missing, ", "), note)
	args := makeCommand(root, opts.BinDir, targets)
	fmt.Fprintf(opts.Progress, "$ %s\n", strings.Join(args, " "))
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = opts.Progress, opts.Progress
	// make and the go commands under it are one process group, so that an
	// interrupted fedlet up stops the whole build, not make alone.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("build %s: %s: %w", strings.Join(missing, ", "), strings.Join(args, " "), err)
	}
	if still := missingComponents(opts.BinDir, names); len(still) > 0 {
		return fmt.Errorf("make finished but %s is still missing from %s", strings.Join(still, ", "), opts.BinDir)
	}
	return nil
}
