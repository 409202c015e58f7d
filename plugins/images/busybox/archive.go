package busybox

import (
	"archive/tar"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Annotations in an OCI index that name an image. containerd's import reads
// the first; other tools read the second (the tag alone).
const (
	AnnotationContainerdImageName = "io.containerd.image.name"
	AnnotationRefName             = "org.opencontainers.image.ref.name"
)

// WriteOCIArchive writes img as an OCI image layout in a tar stream (the
// format `ctr images import` and containerd's client.Import read), its index
// naming it ref, for example "docker.io/fedlet/busybox:latest".
func WriteOCIArchive(img v1.Image, ref string, w io.Writer) error {
	manifest, err := img.RawManifest()
	if err != nil {
		return fmt.Errorf("read manifest: %w", err)
	}
	manifestDigest, err := img.Digest()
	if err != nil {
		return fmt.Errorf("digest manifest: %w", err)
	}
	mediaType, err := img.MediaType()
	if err != nil {
		return fmt.Errorf("read manifest media type: %w", err)
	}
	config, err := img.RawConfigFile()
	if err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	configDigest, err := img.ConfigName()
	if err != nil {
		return fmt.Errorf("digest config: %w", err)
	}

	index := v1.IndexManifest{
		SchemaVersion: 2,
		MediaType:     types.OCIImageIndex,
		Manifests: []v1.Descriptor{{
			MediaType: mediaType,
			Size:      int64(len(manifest)),
			Digest:    manifestDigest,
			Platform:  &v1.Platform{OS: "linux", Architecture: "amd64"},
			Annotations: map[string]string{
				AnnotationContainerdImageName: ref,
				AnnotationRefName:             tagOf(ref),
			},
		}},
	}
	indexJSON, err := json.Marshal(index)
	if err != nil {
		return fmt.Errorf("encode index: %w", err)
	}

	tw := tar.NewWriter(w)
	put := func(name string, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(data)), ModTime: epoch}); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
		if _, err := tw.Write(data); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
		return nil
	}
	if err := put("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
		return err
	}
	if err := put("index.json", indexJSON); err != nil {
		return err
	}
	if err := put(blobPath(manifestDigest), manifest); err != nil {
		return err
	}
	if err := put(blobPath(configDigest), config); err != nil {
		return err
	}
	layers, err := img.Layers()
	if err != nil {
		return fmt.Errorf("list layers: %w", err)
	}
	for _, l := range layers {
		if err := putLayer(tw, l); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("finish archive: %w", err)
	}
	return nil
}

func putLayer(tw *tar.Writer, l v1.Layer) error {
	d, err := l.Digest()
	if err != nil {
		return fmt.Errorf("digest layer: %w", err)
	}
	size, err := l.Size()
	if err != nil {
		return fmt.Errorf("size layer %s: %w", d, err)
	}
	rc, err := l.Compressed()
	if err != nil {
		return fmt.Errorf("read layer %s: %w", d, err)
	}
	defer rc.Close()
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: blobPath(d), Mode: 0o644, Size: size, ModTime: epoch}); err != nil {
		return fmt.Errorf("write layer %s: %w", d, err)
	}
	if _, err := io.Copy(tw, rc); err != nil {
		return fmt.Errorf("write layer %s: %w", d, err)
	}
	return nil
}

func blobPath(h v1.Hash) string {
	return "blobs/" + h.Algorithm + "/" + h.Hex
}

// tagOf returns the tag of ref ("latest" when it has none), which is what
// the OCI ref.name annotation holds.
func tagOf(ref string) string {
	if i := strings.Index(ref, "@"); i >= 0 {
		ref = ref[:i]
	}
	slash := strings.LastIndex(ref, "/")
	if colon := strings.LastIndex(ref, ":"); colon > slash {
		return ref[colon+1:]
	}
	return "latest"
}
