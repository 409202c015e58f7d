package cluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
)

// runtimeNamespace is the containerd namespace fedlet's runtime plugin
// keeps every container, task and snapshot in.
const runtimeNamespace = "fedlet"

// containerdConfig is containerd's configuration (format version 4, that
// of containerd 2.4): everything under DIR/containerd, no system config
// imported, and none of the plugins that reach for system paths or serve
// what fedlet does not use (CRI, NRI). Shim sockets stay in containerd's
// compiled-in /run/containerd/s: a path under DIR could pass the 108-byte
// limit of a socket address.
func containerdConfig(dir string) string {
	return fmt.Sprintf(`version = 4
root = %q
state = %q
imports = []
# fedlet drives containerd through its own API, not CRI.
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.cri.v1.images",
  "io.containerd.cri.v1.runtime",
  "io.containerd.podsandbox.controller.v1.podsandbox",
  "io.containerd.nri.v1.nri",
]

[plugins."io.containerd.server.v1.grpc"]
  address = %q

[plugins."io.containerd.server.v1.ttrpc"]
  address = %q

[plugins."io.containerd.internal.v1.opt"]
  path = %q

[plugins."io.containerd.image-verifier.v1.bindir"]
  bin_dir = %q
`,
		filepath.Join(dir, "root"),
		filepath.Join(dir, "state"),
		filepath.Join(dir, "containerd.sock"),
		filepath.Join(dir, "containerd.sock.ttrpc"),
		filepath.Join(dir, "opt"),
		filepath.Join(dir, "opt", "image-verifier", "bin"))
}

// startContainerd runs containerd with the config above, the bin directory
// first on its PATH so that it finds our containerd-shim-runc-v2 (and runc
// from the system after it), and waits until it serves.
func (c *Cluster) startContainerd(ctx context.Context) error {
	dir := c.paths.Containerd
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return fmt.Errorf("create containerd directory: %w", err)
	}
	config := filepath.Join(dir, "config.toml")
	if err := writeFile(config, []byte(containerdConfig(dir)), 0o644); err != nil {
		return err
	}
	c.progress("starting containerd (socket %s)…", c.paths.ContainerdSocket)
	ch, err := c.start("containerd", []string{"--config", config}, startOptions{
		dir: dir,
		env: []string{"PATH=" + c.opts.BinDir + string(os.PathListSeparator) + os.Getenv("PATH")},
	})
	if err != nil {
		return err
	}
	c.containerd = ch
	took, err := waitReady(ctx, ch, time.Minute, func(ctx context.Context) error {
		if _, err := os.Stat(c.paths.ContainerdSocket); err != nil {
			return err
		}
		client, err := containerd.New(c.paths.ContainerdSocket)
		if err != nil {
			return err
		}
		defer client.Close()
		serving, err := client.IsServing(ctx)
		if err != nil {
			return err
		}
		if !serving {
			return fmt.Errorf("containerd is not serving yet")
		}
		return nil
	})
	if err != nil {
		return err
	}
	c.progress("containerd ready in %.1fs", took.Seconds())
	return nil
}
