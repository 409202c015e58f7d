// Package containerdtest starts a private containerd daemon for tests: its
// root, state and socket live in one directory of its own, and the runc shim
// it uses is the one built next to it (in the repository's bin/), found
// first on its PATH.
package containerdtest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"
)

// BinDirEnv names the directory holding containerd and
// containerd-shim-runc-v2; by default the bin/ directory of the repository
// that holds the working directory.
const BinDirEnv = "FEDLET_BIN_DIR"

// Options say where the daemon lives.
type Options struct {
	// Dir holds the daemon's root, state, socket, config and log. Keep it
	// short: the socket path must fit in 108 bytes.
	Dir string
	// BinDir holds containerd and its runc shim; empty means FindBinDir().
	BinDir string
}

// Daemon is a running containerd.
type Daemon struct {
	Dir     string
	Address string // the gRPC socket
	Root    string
	State   string
	LogPath string // the daemon's own log
	BinDir  string

	cmd    *exec.Cmd
	exited chan struct{}
}

// FindBinDir returns $FEDLET_BIN_DIR, or the bin/ directory of the
// repository above the working directory, if it holds containerd.
func FindBinDir() (string, error) {
	if d := os.Getenv(BinDirEnv); d != "" {
		return d, checkBinaries(d)
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			if checkBinaries(filepath.Join(dir, "bin")) == nil {
				return filepath.Join(dir, "bin"), nil
			}
		}
		if filepath.Dir(dir) == dir {
			return "", fmt.Errorf("no bin/containerd in a repository above %s (set %s, or build containerd 2.x into bin/)", wd, BinDirEnv)
		}
	}
}

func checkBinaries(dir string) error {
	for _, b := range []string{"containerd", "containerd-shim-runc-v2"} {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			return fmt.Errorf("containerd binaries: %w", err)
		}
	}
	return nil
}

// Missing says what the daemon needs and the machine lacks (root, the
// binaries, runc), or "" when nothing is.
func Missing() string {
	if os.Geteuid() != 0 {
		return "containerd needs root"
	}
	if _, err := FindBinDir(); err != nil {
		return err.Error()
	}
	if _, err := exec.LookPath("runc"); err != nil {
		return "runc is not installed"
	}
	return ""
}

// Start writes a config into opts.Dir, starts containerd and waits until it
// answers.
func Start(ctx context.Context, opts Options) (*Daemon, error) {
	if opts.Dir == "" {
		return nil, errors.New("containerdtest: Options.Dir must be set")
	}
	binDir := opts.BinDir
	if binDir == "" {
		var err error
		if binDir, err = FindBinDir(); err != nil {
			return nil, err
		}
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, err
	}
	d := &Daemon{
		Dir:     dir,
		Address: filepath.Join(dir, "containerd.sock"),
		Root:    filepath.Join(dir, "root"),
		State:   filepath.Join(dir, "state"),
		LogPath: filepath.Join(dir, "containerd.log"),
		BinDir:  binDir,
		exited:  make(chan struct{}),
	}
	if len(d.Address) > 100 {
		return nil, fmt.Errorf("containerdtest: socket path %s is too long; use a shorter Dir", d.Address)
	}
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfgPath, []byte(d.config()), 0o644); err != nil {
		return nil, err
	}
	logFile, err := os.OpenFile(d.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()

	d.cmd = exec.Command(filepath.Join(binDir, "containerd"), "--config", cfgPath)
	d.cmd.Stdout, d.cmd.Stderr = logFile, logFile
	// The daemon finds its shim on PATH: ours first.
	d.cmd.Env = append(slices.DeleteFunc(os.Environ(), func(e string) bool { return strings.HasPrefix(e, "PATH=") }),
		"PATH="+binDir+string(os.PathListSeparator)+os.Getenv("PATH"))
	// Not killed with the test's process group on ^C before cleanup runs.
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := d.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start containerd: %w", err)
	}
	go func() {
		_ = d.cmd.Wait()
		close(d.exited)
	}()
	if err := d.waitReady(ctx); err != nil {
		_ = d.kill()
		return nil, fmt.Errorf("%w\n%s", err, d.LogTail(40))
	}
	return d, nil
}

// config is a containerd 2.x config: no CRI (the agent is the kubelet), no
// NRI and no /opt plugin (they use host-wide paths).
func (d *Daemon) config() string {
	return fmt.Sprintf(`version = 3
root = %q
state = %q
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.cri.v1.images",
  "io.containerd.cri.v1.runtime",
  "io.containerd.podsandbox.controller.v1.podsandbox",
  "io.containerd.nri.v1.nri",
  "io.containerd.internal.v1.opt",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.blockfile",
  "io.containerd.snapshotter.v1.erofs",
  "io.containerd.differ.v1.erofs",
]

[grpc]
  address = %q

[ttrpc]
  address = %q

[debug]
  level = "info"
`, d.Root, d.State, d.Address, d.Address+".ttrpc")
}

func (d *Daemon) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for {
		select {
		case <-d.exited:
			return errors.New("containerd exited while starting")
		case <-ctx.Done():
			return fmt.Errorf("containerd did not answer: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
		if _, err := os.Stat(d.Address); err != nil {
			continue
		}
		c, err := client.New(d.Address)
		if err != nil {
			continue
		}
		vctx, vcancel := context.WithTimeout(ctx, time.Second)
		_, err = c.Version(vctx)
		vcancel()
		c.Close()
		if err == nil {
			return nil
		}
	}
}

// Client returns a client of the daemon using namespace.
func (d *Daemon) Client(namespace string) (*client.Client, error) {
	return client.New(d.Address, client.WithDefaultNamespace(namespace))
}

// LogTail returns the last n lines of the daemon's log.
func (d *Daemon) LogTail(n int) string {
	data, err := os.ReadFile(d.LogPath)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Stop kills every task the daemon runs and deletes them with their
// containers, stops the daemon, unmounts what is left under Dir and removes
// Dir.
func (d *Daemon) Stop(ctx context.Context) error {
	errs := []error{d.Clean(ctx)}
	select {
	case <-d.exited:
	default:
		_ = d.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-d.exited:
		case <-time.After(10 * time.Second):
			errs = append(errs, d.kill())
		}
	}
	errs = append(errs, unmountUnder(d.Dir), os.RemoveAll(d.Dir))
	return errors.Join(errs...)
}

func (d *Daemon) kill() error {
	if err := d.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	<-d.exited
	return nil
}

// Clean kills and deletes every task, and deletes every container (with its
// snapshot), in every namespace.
func (d *Daemon) Clean(ctx context.Context) error {
	c, err := client.New(d.Address)
	if err != nil {
		return err
	}
	defer c.Close()
	nss, err := c.NamespaceService().List(ctx)
	if err != nil {
		return fmt.Errorf("list namespaces: %w", err)
	}
	var errs []error
	for _, ns := range nss {
		nctx := namespaces.WithNamespace(ctx, ns)
		ctrs, err := c.Containers(nctx)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, ctr := range ctrs {
			if t, err := ctr.Task(nctx, nil); err == nil {
				if _, err := t.Delete(nctx, client.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
					errs = append(errs, fmt.Errorf("delete task %s: %w", ctr.ID(), err))
				}
			}
			if err := ctr.Delete(nctx, client.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("delete container %s: %w", ctr.ID(), err))
			}
		}
		// runc keeps its state of the namespace in a host-wide directory;
		// it is empty now unless another daemon uses the same namespace.
		_ = os.Remove(filepath.Join("/run/containerd/runc", ns))
	}
	return errors.Join(errs...)
}

// unmountUnder unmounts every mount below dir, deepest first.
func unmountUnder(dir string) error {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	defer f.Close()
	var mounts []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && strings.HasPrefix(fields[4], dir+"/") {
			mounts = append(mounts, fields[4])
		}
	}
	var errs []error
	for i := len(mounts) - 1; i >= 0; i-- {
		if err := unix.Unmount(mounts[i], unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", mounts[i], err))
		}
	}
	return errors.Join(errs...)
}
