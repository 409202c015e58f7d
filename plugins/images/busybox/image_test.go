package busybox

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/fedlet/fedlet/plugins/sdk/testenv"
)

func requireBusybox(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(BinaryPath); err != nil {
		testenv.Missing(t, "busybox-static is not installed: %v", err)
	}
}

func TestImageIsDeterministic(t *testing.T) {
	requireBusybox(t)
	a, err := Image()
	if err != nil {
		t.Fatal(err)
	}
	b, err := Image()
	if err != nil {
		t.Fatal(err)
	}
	da, _ := a.Digest()
	db, _ := b.Digest()
	if da != db {
		t.Fatalf("two builds differ: %s and %s", da, db)
	}
}

func TestImageContents(t *testing.T) {
	requireBusybox(t)
	img, err := Image()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.OS != "linux" || cfg.Architecture != "amd64" {
		t.Errorf("platform = %s/%s, want linux/amd64", cfg.OS, cfg.Architecture)
	}
	if len(cfg.Config.Cmd) != 1 || cfg.Config.Cmd[0] != "sh" {
		t.Errorf("Cmd = %q, want [sh]", cfg.Config.Cmd)
	}
	if len(cfg.Config.Env) != 1 || cfg.Config.Env[0] != "PATH="+Path {
		t.Errorf("Env = %q", cfg.Config.Env)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers = %d, %v; want 1", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	found := map[string]*tar.Header{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		found[h.Name] = h
	}
	for _, name := range []string{"bin/busybox", "etc/passwd", "etc/group", "tmp/"} {
		if found[name] == nil {
			t.Errorf("layer lacks %s", name)
		}
	}
	for _, a := range requiredApplets {
		h := found["bin/"+a]
		if h == nil || h.Typeflag != tar.TypeSymlink || h.Linkname != "busybox" {
			t.Errorf("bin/%s is not a symlink to busybox: %+v", a, h)
		}
	}
}

func TestWriteOCIArchive(t *testing.T) {
	requireBusybox(t)
	img, err := Image()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WriteOCIArchive(img, "docker.io/fedlet/busybox:1.0", &buf); err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	tr := tar.NewReader(&buf)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(tr)
		files[h.Name] = data
	}
	var index v1.IndexManifest
	if err := json.Unmarshal(files["index.json"], &index); err != nil {
		t.Fatalf("index.json: %v", err)
	}
	if len(index.Manifests) != 1 {
		t.Fatalf("index has %d manifests", len(index.Manifests))
	}
	m := index.Manifests[0]
	if m.Annotations[AnnotationContainerdImageName] != "docker.io/fedlet/busybox:1.0" || m.Annotations[AnnotationRefName] != "1.0" {
		t.Errorf("annotations = %v", m.Annotations)
	}
	if _, ok := files[blobPath(m.Digest)]; !ok {
		t.Errorf("archive lacks the manifest blob %s", m.Digest)
	}
	if _, ok := files["oci-layout"]; !ok {
		t.Error("archive lacks oci-layout")
	}
}
