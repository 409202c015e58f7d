package containerd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"syscall"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/remotes"
	"github.com/containerd/containerd/v2/core/remotes/docker"
	remoteerrors "github.com/containerd/containerd/v2/core/remotes/errors"
	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
	"github.com/fedlet/fedlet/plugins/sdk"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// PullImage makes an image present and unpacked into the snapshotter. The
// error's code tells an image that does not exist (NotFound) from a registry
// that cannot be reached (Unavailable) and refused credentials
// (PermissionDenied).
func (b *Backend) PullImage(ctx context.Context, req *runtimev1.PullImageRequest) (*runtimev1.PullImageResponse, error) {
	s, err := b.sessionFor(req.GetNode())
	if err != nil {
		return nil, err
	}
	ref, err := s.pullImage(s.withNamespace(ctx), req)
	if err != nil {
		return nil, grpcError(err)
	}
	return &runtimev1.PullImageResponse{ImageRef: ref}, nil
}

func (s *session) pullImage(ctx context.Context, req *runtimev1.PullImageRequest) (string, error) {
	if req.GetAlways() && req.GetNever() {
		return "", sdk.InvalidArgument("always", "cannot be set together with never")
	}
	name, err := normalizeImage(req.GetImage())
	if err != nil {
		return "", err
	}
	if !req.GetAlways() {
		img, err := s.client.GetImage(ctx, name)
		switch {
		case err == nil:
			if err := s.ensureUnpacked(ctx, img); err != nil {
				return "", err
			}
			return digestRef(img)
		case !errdefs.IsNotFound(err):
			return "", statusf(err, "look up image %s", name)
		case req.GetNever():
			return "", status.Errorf(codes.FailedPrecondition, "image %s is not present on the node and its pull policy is Never", req.GetImage())
		}
	}

	img, err := s.client.Pull(ctx, name,
		client.WithPullUnpack,
		client.WithPullSnapshotter(s.cfg.Snapshotter),
		client.WithResolver(s.resolver(req.GetAuth())),
	)
	if err != nil {
		return "", pullError(name, err)
	}
	s.logger.Info("image pulled", "node", req.GetNode(), "image", name, "digest", img.Target().Digest.String())
	return digestRef(img)
}

// normalizeImage turns a Kubernetes image name into containerd's full form
// ("busybox" is "docker.io/library/busybox:latest").
func normalizeImage(image string) (string, error) {
	named, err := reference.ParseDockerRef(image)
	if err != nil {
		return "", sdk.InvalidArgument("image", fmt.Sprintf("%q is not a valid image reference: %v", image, err))
	}
	return named.String(), nil
}

// digestRef is the image's "repository@digest" reference.
func digestRef(img client.Image) (string, error) {
	named, err := reference.ParseNormalizedNamed(img.Name())
	if err != nil {
		return "", status.Errorf(codes.Internal, "image %s has an unparsable name: %v", img.Name(), err)
	}
	return reference.TrimNamed(named).String() + "@" + img.Target().Digest.String(), nil
}

// localImage returns an image that is present, its config read from the
// cache. PullImage has unpacked it for the snapshotter; createContainer
// unpacks it again if that is undone.
func (s *session) localImage(ctx context.Context, image string) (client.Image, error) {
	name, err := normalizeImage(image)
	if err != nil {
		return nil, sdk.InvalidArgument("container.image", status.Convert(err).Message())
	}
	img, err := s.client.GetImage(ctx, name)
	if errdefs.IsNotFound(err) {
		return nil, status.Errorf(codes.FailedPrecondition, "image %s is not present on the node: pull it first", image)
	}
	if err != nil {
		return nil, statusf(err, "look up image %s", name)
	}
	return s.imageConfigs.withConfig(ctx, img)
}

func (s *session) ensureUnpacked(ctx context.Context, img client.Image) error {
	ok, err := img.IsUnpacked(ctx, s.cfg.Snapshotter)
	if err != nil {
		return statusf(err, "check image %s is unpacked", img.Name())
	}
	if ok {
		return nil
	}
	if err := img.Unpack(ctx, s.cfg.Snapshotter); err != nil {
		return statusf(err, "unpack image %s into %s", img.Name(), s.cfg.Snapshotter)
	}
	return nil
}

// resolver speaks to registries with the pull's credentials, over plain
// HTTP to loopback and the configured plain-HTTP registries.
func (s *session) resolver(auth *runtimev1.RegistryAuth) remotes.Resolver {
	plain := s.cfg.PlainHTTPRegistries
	opts := []docker.RegistryOpt{
		docker.WithPlainHTTP(func(host string) (bool, error) {
			if slices.Contains(plain, host) {
				return true, nil
			}
			return docker.MatchLocalhost(host)
		}),
	}
	if auth != nil && (auth.GetUsername() != "" || auth.GetPassword() != "" || auth.GetIdentityToken() != "") {
		opts = append(opts, docker.WithAuthorizer(docker.NewDockerAuthorizer(
			docker.WithAuthCreds(func(string) (string, string, error) {
				// An identity token goes with an empty user name.
				if auth.GetIdentityToken() != "" {
					return "", auth.GetIdentityToken(), nil
				}
				return auth.GetUsername(), auth.GetPassword(), nil
			}),
		)))
	} else {
		opts = append(opts, docker.WithAuthorizer(docker.NewDockerAuthorizer()))
	}
	return docker.NewResolver(docker.ResolverOptions{Hosts: docker.ConfigureDefaultRegistries(opts...)})
}

// pullError says why a pull failed, with the code that fits.
func pullError(name string, err error) error {
	host := name
	if named, perr := reference.ParseNormalizedNamed(name); perr == nil {
		host = reference.Domain(named)
	}
	var unexpected remoteerrors.ErrUnexpectedStatus
	var netErr net.Error
	var opErr *net.OpError
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return statusf(err, "pull image %s", name)
	case errdefs.IsNotFound(err):
		return status.Errorf(codes.NotFound, "image %s does not exist in registry %s: %v", name, host, err)
	case errors.Is(err, docker.ErrInvalidAuthorization), errdefs.IsUnauthorized(err), errdefs.IsPermissionDenied(err):
		return status.Errorf(codes.PermissionDenied, "pull image %s: registry %s refused access (wrong credentials, or the repository does not exist): %v", name, host, err)
	case errors.As(err, &unexpected):
		switch {
		case unexpected.StatusCode == http.StatusUnauthorized || unexpected.StatusCode == http.StatusForbidden:
			return status.Errorf(codes.PermissionDenied, "pull image %s: registry %s refused access: %v", name, host, err)
		case unexpected.StatusCode == http.StatusNotFound:
			return status.Errorf(codes.NotFound, "image %s does not exist in registry %s: %v", name, host, err)
		case unexpected.StatusCode == http.StatusTooManyRequests || unexpected.StatusCode >= 500:
			return status.Errorf(codes.Unavailable, "pull image %s: registry %s is unavailable: %v", name, host, err)
		}
	case errors.As(err, &dnsErr), errors.As(err, &opErr), errors.As(err, &netErr),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EHOSTUNREACH):
		return status.Errorf(codes.Unavailable, "pull image %s: registry %s is unreachable: %v", name, host, err)
	}
	return statusf(err, "pull image %s", name)
}
