package containerd

import (
	"bytes"
	"context"
	"encoding/json"
	"sync"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/content"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// maxImageConfigs bounds the cache; it is emptied when full.
const maxImageConfigs = 64

// imageConfigs keeps the config of the images containers are created from,
// by image target digest. Content never changes under a digest, and
// creating a container reads the config three times (stop signal, snapshot
// parent, spec), each time a few calls to containerd.
type imageConfigs struct {
	mu      sync.Mutex
	configs map[digest.Digest]*imageConfig
}

type imageConfig struct {
	desc    ocispec.Descriptor // of the config blob
	data    []byte
	diffIDs []digest.Digest
}

// withConfig returns img with its config read from the cache, reading it
// once if it is not there yet.
func (c *imageConfigs) withConfig(ctx context.Context, img client.Image) (client.Image, error) {
	key := img.Target().Digest
	c.mu.Lock()
	cfg := c.configs[key]
	c.mu.Unlock()
	if cfg == nil {
		desc, err := img.Config(ctx)
		if err != nil {
			return nil, statusf(err, "read config of image %s", img.Name())
		}
		data, err := content.ReadBlob(ctx, img.ContentStore(), desc)
		if err != nil {
			return nil, statusf(err, "read config of image %s", img.Name())
		}
		var spec ocispec.Image
		if err := json.Unmarshal(data, &spec); err != nil {
			return nil, statusf(err, "decode config of image %s", img.Name())
		}
		cfg = &imageConfig{desc: desc, data: data, diffIDs: spec.RootFS.DiffIDs}
		c.mu.Lock()
		if c.configs == nil || len(c.configs) >= maxImageConfigs {
			c.configs = map[digest.Digest]*imageConfig{}
		}
		c.configs[key] = cfg
		c.mu.Unlock()
	}
	return &configuredImage{Image: img, cfg: cfg}, nil
}

// configuredImage answers what containerd's container options ask of an
// image's config from memory.
type configuredImage struct {
	client.Image
	cfg *imageConfig
}

func (i *configuredImage) Config(context.Context) (ocispec.Descriptor, error) {
	return i.cfg.desc, nil
}

func (i *configuredImage) RootFS(context.Context) ([]digest.Digest, error) {
	return i.cfg.diffIDs, nil
}

func (i *configuredImage) ContentStore() content.Store {
	return configStore{Store: i.Image.ContentStore(), cfg: i.cfg}
}

// configStore serves the config blob from memory, the rest from containerd.
type configStore struct {
	content.Store
	cfg *imageConfig
}

func (s configStore) ReaderAt(ctx context.Context, desc ocispec.Descriptor) (content.ReaderAt, error) {
	if desc.Digest == s.cfg.desc.Digest {
		return blobReader{bytes.NewReader(s.cfg.data)}, nil
	}
	return s.Store.ReaderAt(ctx, desc)
}

type blobReader struct{ *bytes.Reader }

func (blobReader) Close() error { return nil }
