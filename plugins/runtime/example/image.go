package example

import (
	"context"
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
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
	"github.com/fedlet/fedlet/plugins/sdk/statefile"
)

// image is the record of a pulled image, by the name it was pulled by.
type image struct {
	Ref    string        `json:"ref"`    // repository@digest
	Dir    string        `json:"dir"`    // its root filesystem is Dir/rootfs
	Config v1.ConfigFile `json:"config"` // entrypoint, command, env, user
}

func (r *Runtime) imagePath(ref string) string { return filepath.Join(r.dir, "images", short(ref)+".json") }

func (r *Runtime) PullImage(ctx context.Context, req *runtimev1.PullImageRequest) (*runtimev1.PullImageResponse, error) {
	var img image
	if ok, err := statefile.Read(r.imagePath(req.GetImage()), &img); err != nil || (ok && !req.GetAlways()) || (!ok && req.GetNever()) {
		if !ok && err == nil {
			err = status.Errorf(codes.NotFound, "image %s is not present, and the pull policy is Never", req.GetImage())
		}
		return &runtimev1.PullImageResponse{ImageRef: img.Ref}, err
	}
	ref, err := name.ParseReference(req.GetImage(), name.Insecure)
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "image %q: %v", req.GetImage(), err)
	}
	auth := authn.FromConfig(authn.AuthConfig{Username: req.GetAuth().GetUsername(), Password: req.GetAuth().GetPassword(), IdentityToken: req.GetAuth().GetIdentityToken()})
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
	img.Ref, img.Dir = ref.Context().Digest(digest.String()).String(), filepath.Join(r.dir, "images", digest.Hex)
	cfg, err := remoteImg.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("pull %s: read config: %w", req.GetImage(), err)
	}
	img.Config = *cfg
	if err := unpack(ctx, remoteImg, img.Dir); err != nil {
		return nil, fmt.Errorf("pull %s: %w", req.GetImage(), err)
	}
	return &runtimev1.PullImageResponse{ImageRef: img.Ref}, statefile.Write(r.imagePath(req.GetImage()), img)
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
