package containerdtest

import (
	"context"
	"fmt"
	"io"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/fedlet/fedlet/plugins/images/busybox"
)

// ImportImage imports img into namespace under ref (a full name such as
// "docker.io/fedlet/busybox:test") and unpacks it for snapshotter.
func (d *Daemon) ImportImage(ctx context.Context, namespace, snapshotter string, img v1.Image, ref string) error {
	c, err := d.Client(namespace)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx = namespaces.WithNamespace(ctx, namespace)

	pr, pw := io.Pipe()
	written := make(chan error, 1)
	go func() {
		err := busybox.WriteOCIArchive(img, ref, pw)
		pw.CloseWithError(err)
		written <- err
	}()
	imgs, err := c.Import(ctx, pr)
	pr.CloseWithError(fmt.Errorf("import ended"))
	if werr := <-written; werr != nil && err == nil {
		err = werr
	}
	if err != nil {
		return fmt.Errorf("import %s: %w", ref, err)
	}
	for _, i := range imgs {
		if err := client.NewImage(c, i).Unpack(ctx, snapshotter); err != nil {
			return fmt.Errorf("unpack %s: %w", i.Name, err)
		}
	}
	return nil
}

// ImportBusybox imports the image of plugins/images/busybox under ref.
func (d *Daemon) ImportBusybox(ctx context.Context, namespace, snapshotter, ref string) error {
	img, err := busybox.Image()
	if err != nil {
		return err
	}
	return d.ImportImage(ctx, namespace, snapshotter, img, ref)
}
