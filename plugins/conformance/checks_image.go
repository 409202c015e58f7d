package conformance

import (
	"fmt"
	"strings"

	"github.com/distribution/reference"
	"google.golang.org/grpc/codes"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// Images.
var imageChecks = []Check{
	{
		Name: "image-pull",
		Rule: "PullImage makes an image present on the node, and answers its digest reference; pulling it again succeeds",
		run:  checkPullImage,
	},
	{
		Name: "image-pull-not-found",
		Rule: "PullImage of an image the registry does not have fails with NotFound, so that the agent can tell a missing image from a registry it cannot reach",
		run:  checkPullImageNotFound,
	},
}

func checkPullImage(p *probe) {
	if p.image() == "" {
		p.Fatalf("not run: no image given")
	}
	for i := 1; i <= 2; i++ {
		ctx, cancel := p.call()
		resp, err := p.rt().PullImage(ctx, &runtimev1.PullImageRequest{Node: p.node(), Image: p.image()})
		cancel()
		if err != nil {
			p.Fatalf("PullImage %s (call %d): %v", p.image(), i, err)
		}
		if !strings.Contains(resp.GetImageRef(), "@") {
			p.Errorf("PullImage %s (call %d) answered image ref %q, want a digest reference (repository@digest)", p.image(), i, resp.GetImageRef())
		}
	}
}

func checkPullImageNotFound(p *probe) {
	if p.image() == "" {
		p.Fatalf("not run: no image given")
	}
	absent, err := absentImage(p.image())
	if err != nil {
		p.Fatalf("%v", err)
	}
	ctx, cancel := p.call()
	defer cancel()
	_, err = p.rt().PullImage(ctx, &runtimev1.PullImageRequest{Node: p.node(), Image: absent})
	p.wantCode("PullImage of "+absent, err, codes.NotFound)
}

// absentImage names a tag that the repository of image does not have: a
// registry answers an unknown tag of a repository it serves with 404, where
// an unknown repository may get 401.
func absentImage(image string) (string, error) {
	named, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return "", fmt.Errorf("image %q: %w", image, err)
	}
	tagged, err := reference.WithTag(reference.TrimNamed(named), "fedlet-conformance-absent-"+newUID()[:8])
	if err != nil {
		return "", fmt.Errorf("image %q: %w", image, err)
	}
	return tagged.String(), nil
}
