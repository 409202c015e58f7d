// Package imagestore pulls OCI images from registries without a daemon
// (go-containerregistry) and keeps their root filesystems unpacked on
// disk, for runtimes that run containers from a directory: runc, crun, a
// virtual machine's shared folder.
//
// Pull serves the runtime protocol's PullImage whole (pull policies,
// registry credentials, NotFound for an image the registry does not have);
// Get finds a pulled image by the name it was pulled by; Image.Mount gives
// each container a writable overlay of the image's root filesystem.
package imagestore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"

	"github.com/containerd/containerd/v2/pkg/archive"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
	"github.com/fedlet/fedlet/plugins/sdk/statefile"
)

// Store keeps images under a directory: each image's root filesystem once
// per digest, and a record per name it was pulled by.
type Store struct {
	dir string
}

// New returns the store kept in dir, made if needed.
func New(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("make image store %s: %w", dir, err)
	}
	return &Store{dir: dir}, nil
}

// Image is a pulled image.
type Image struct {
	// Ref is the digest reference it was pulled as: repository@sha256:...
	Ref string `json:"ref"`
	// Dir holds its root filesystem, Dir/rootfs.
	Dir string `json:"dir"`
	// Config is its configuration: entrypoint, command, environment, user,
	// working directory.
	Config v1.Config `json:"config"`
}

// RootFS is the directory of the image's root filesystem. Containers must
// not write to it: Mount gives each its own writable view.
func (i Image) RootFS() string { return filepath.Join(i.Dir, "rootfs") }

func (s *Store) record(image string) string {
	h := sha256.Sum256([]byte(image))
	return filepath.Join(s.dir, hex.EncodeToString(h[:8])+".json")
}

// Get returns the image pulled by that name; FailedPrecondition when none
// was.
func (s *Store) Get(image string) (Image, error) {
	var img Image
	ok, err := statefile.Read(s.record(image), &img)
	if err == nil && !ok {
		err = status.Errorf(codes.FailedPrecondition, "image %s is not pulled", image)
	}
	return img, err
}

// Pull serves PullImage: it pulls the image unless it is present (or
// always), refuses to when never, and answers its digest reference. An
// image the registry does not have fails with NotFound, a registry that
// cannot be reached with Unavailable.
func (s *Store) Pull(ctx context.Context, req *runtimev1.PullImageRequest) (*runtimev1.PullImageResponse, error) {
	img, err := s.Get(req.GetImage())
	if err == nil && !req.GetAlways() {
		return &runtimev1.PullImageResponse{ImageRef: img.Ref}, nil
	}
	if status.Code(err) == codes.FailedPrecondition && req.GetNever() {
		return nil, status.Errorf(codes.NotFound, "image %s is not present, and the pull policy is Never", req.GetImage())
	}
	ref, err := name.ParseReference(req.GetImage(), name.Insecure)
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "image %q: %v", req.GetImage(), err)
	}
	a := req.GetAuth()
	auth := authn.FromConfig(authn.AuthConfig{Username: a.GetUsername(), Password: a.GetPassword(), IdentityToken: a.GetIdentityToken()})
	remoteImg, err := remote.Image(ref, remote.WithContext(ctx), remote.WithAuth(auth))
	var terr *transport.Error
	if errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound {
		return nil, status.Errorf(codes.NotFound, "pull %s: %v", req.GetImage(), err)
	} else if err != nil {
		return nil, status.Errorf(codes.Unavailable, "pull %s: %v", req.GetImage(), err)
	}
	digest, err := remoteImg.Digest()
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w", req.GetImage(), err)
	}
	cfg, err := remoteImg.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("pull %s: read config: %w", req.GetImage(), err)
	}
	img = Image{Ref: ref.Context().Digest(digest.String()).String(), Dir: filepath.Join(s.dir, digest.Hex), Config: cfg.Config}
	if err := unpack(ctx, remoteImg, img.Dir); err != nil {
		return nil, fmt.Errorf("pull %s: %w", req.GetImage(), err)
	}
	return &runtimev1.PullImageResponse{ImageRef: img.Ref}, statefile.Write(s.record(req.GetImage()), img)
}

// unpack applies the image's layers, in order, to dir/rootfs, unless an
// earlier pull did.
func unpack(ctx context.Context, img v1.Image, dir string) error {
	if _, err := os.Stat(filepath.Join(dir, "rootfs")); err == nil {
		return nil
	}
	layers, err := img.Layers()
	if err != nil {
		return fmt.Errorf("list layers: %w", err)
	}
	tmp := dir + ".unpacking"
	_ = os.RemoveAll(tmp)
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return fmt.Errorf("make rootfs: %w", err)
	}
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			return fmt.Errorf("read layer: %w", err)
		}
		_, err = archive.Apply(ctx, tmp, rc)
		_ = rc.Close()
		if err != nil {
			return fmt.Errorf("apply layer: %w", err)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("make image directory: %w", err)
	}
	return os.Rename(tmp, filepath.Join(dir, "rootfs"))
}

// Mount mounts at dir/rootfs a writable overlay of the image's root
// filesystem, whose changes go to dir/upper, and returns dir/rootfs. An
// earlier mount there (a start cut short) is replaced.
func (i Image) Mount(dir string) (string, error) {
	for _, d := range []string{"rootfs", "upper", "work"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return "", fmt.Errorf("make container filesystem in %s: %w", dir, err)
		}
	}
	rootfs := filepath.Join(dir, "rootfs")
	_ = Unmount(dir)
	layers := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", i.RootFS(), filepath.Join(dir, "upper"), filepath.Join(dir, "work"))
	if err := unix.Mount("overlay", rootfs, "overlay", 0, layers); err != nil {
		return "", fmt.Errorf("mount the root filesystem at %s: %w", rootfs, err)
	}
	return rootfs, nil
}

// Unmount unmounts what Mount mounted in dir; unmounting nothing succeeds.
func Unmount(dir string) error {
	err := unix.Unmount(filepath.Join(dir, "rootfs"), unix.MNT_DETACH)
	if err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount the root filesystem in %s: %w", dir, err)
	}
	return nil
}
