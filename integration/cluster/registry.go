package cluster

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/fedlet/fedlet/plugins/images/busybox"
)

// registryConfig is the configuration of distribution's registry: the
// filesystem driver under DIR/registry, plain HTTP on loopback.
func registryConfig(storage string, port int) string {
	return fmt.Sprintf(`version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: %q
  delete:
    enabled: true
http:
  addr: 127.0.0.1:%d
`, storage, port)
}

// startRegistry runs the registry, waits for it, and pushes the busybox
// image unless the registry already holds it.
func (c *Cluster) startRegistry(ctx context.Context) error {
	if err := os.MkdirAll(c.paths.Registry, 0o700); err != nil {
		return fmt.Errorf("create registry directory: %w", err)
	}
	config := filepath.Join(c.paths.DataDir, "registry.yaml")
	if err := writeFile(config, []byte(registryConfig(c.paths.Registry, c.opts.Ports.Registry)), 0o644); err != nil {
		return err
	}
	c.progress("starting the registry on 127.0.0.1:%d…", c.opts.Ports.Registry)
	ch, err := c.start("registry", []string{"serve", config}, startOptions{
		dir: c.paths.DataDir,
		// Its OpenTelemetry exporter would otherwise try to reach a collector.
		env: []string{"OTEL_TRACES_EXPORTER=none"},
	})
	if err != nil {
		return err
	}
	url := fmt.Sprintf("http://127.0.0.1:%d/v2/", c.opts.Ports.Registry)
	took, err := waitReady(ctx, ch, time.Minute, func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		return nil
	})
	if err != nil {
		return err
	}
	c.progress("registry ready in %.1fs", took.Seconds())
	return c.pushBusybox(ctx)
}

// pushBusybox pushes the image built from the host's busybox-static as
// localhost:PORT/busybox:latest.
func (c *Cluster) pushBusybox(ctx context.Context) error {
	img, err := busybox.Image()
	if err != nil {
		return fmt.Errorf("build the busybox image: %w", err)
	}
	want, err := img.Digest()
	if err != nil {
		return fmt.Errorf("digest the busybox image: %w", err)
	}
	// "localhost" registries are spoken to over plain HTTP.
	ref, err := name.ParseReference(c.image)
	if err != nil {
		return fmt.Errorf("parse %s: %w", c.image, err)
	}
	if have, err := remote.Head(ref, remote.WithContext(ctx)); err == nil && have.Digest == want {
		c.progress("%s is in the registry (%s)", c.image, want)
		return nil
	}
	if err := remote.Write(ref, img, remote.WithContext(ctx)); err != nil {
		return fmt.Errorf("push %s: %w", c.image, err)
	}
	c.progress("pushed %s (%s)", c.image, want)
	return nil
}
