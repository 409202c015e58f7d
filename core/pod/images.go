package pod

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/flowcontrol"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// imageNeverPullRetry is how soon a container whose image is absent, and
// may not be pulled, looks for it again.
const imageNeverPullRetry = 10 * time.Second

// slowPull is how long a pull runs before the pod's status says that its
// containers are being created: a quick pull costs no status write.
const slowPull = time.Second

// pullResult is the outcome of imagePuller.pull.
type pullResult struct {
	wait time.Duration
	err  error
}

// imagePuller makes containers' images present on the node, as the
// kubelet's image manager does: pull policies, pull secrets
// (pullsecrets.go), the image back-off and the kubelet's events.
type imagePuller struct {
	runtime runtimev1.RuntimeClient
	node    string
	client  kubernetes.Interface // reads pull secrets
	waiting *waitReasons
	events  record.EventRecorder
	log     *slog.Logger
	backoff *flowcontrol.Backoff
	// report writes the pod's status meanwhile when a pull is slow.
	report func(pod *corev1.Pod)
}

// pull makes the container's image present, as its pull policy says,
// with the kubelet's events: "already present on machine" when it is and
// the policy lets it be used, else Pulling then Pulled or Failed, and the
// image back-off after a failure. It returns how long the container must
// wait before the image is tried again; an error only when the agent could
// not ask (ctx ended).
func (c *imagePuller) pull(ctx context.Context, pod *corev1.Pod, ctr *corev1.Container) (time.Duration, error) {
	policy := ctr.ImagePullPolicy
	if policy != corev1.PullAlways {
		present, err := c.present(ctx, ctr.Image)
		switch {
		case ctx.Err() != nil:
			return 0, ctx.Err()
		case status.Code(err) == codes.InvalidArgument:
			msg := status.Convert(err).Message()
			c.waiting.set(pod.UID, ctr.Name, &waitReason{"InvalidImageName", msg})
			containerEvent(c.events, pod, ctr, "", corev1.EventTypeWarning, "InspectFailed", "Failed to apply default image tag %q: %s", ctr.Image, msg)
			containerEvent(c.events, pod, ctr, "", corev1.EventTypeWarning, eventFailed, "Error: InvalidImageName")
			return imageNeverPullRetry, nil
		case present:
			containerEvent(c.events, pod, ctr, "", corev1.EventTypeNormal, eventPulled, "Container image %q already present on machine", ctr.Image)
			return 0, nil
		case err == nil && policy == corev1.PullNever:
			msg := fmt.Sprintf("Container image %q is not present with pull policy of Never", ctr.Image)
			c.waiting.set(pod.UID, ctr.Name, &waitReason{"ErrImageNeverPull", msg})
			containerEvent(c.events, pod, ctr, "", corev1.EventTypeWarning, eventErrImageNeverPull, "%s", msg)
			containerEvent(c.events, pod, ctr, "", corev1.EventTypeWarning, eventFailed, "Error: ErrImageNeverPull")
			return imageNeverPullRetry, nil
		}
		// Absent, or the runtime could not tell: pulling says which.
	}

	image := withDefaultTag(ctr.Image)
	key := backoffKey(pod.UID, "image/"+ctr.Image)
	if c.backoff.IsInBackOffSinceUpdate(key, time.Now()) {
		// The message keeps the pull's error once, however often the back-off is seen.
		if w, _ := c.waiting.get(pod.UID, ctr.Name); w.reason != "ImagePullBackOff" {
			c.waiting.set(pod.UID, ctr.Name, &waitReason{"ImagePullBackOff", fmt.Sprintf("Back-off pulling image %q: %s", image, w.message)})
		}
		containerEvent(c.events, pod, ctr, "", corev1.EventTypeNormal, eventBackOff, "Back-off pulling image %q", image)
		containerEvent(c.events, pod, ctr, "", corev1.EventTypeWarning, eventFailed, "Error: ImagePullBackOff")
		return c.backoff.Get(key), nil
	}
	// A pull may take minutes: once it takes longer than slowPull, the pod
	// says that its containers are being created. Its report is done before
	// this returns, so that it never overtakes a newer one.
	reported := make(chan struct{})
	slow := time.AfterFunc(slowPull, func() {
		defer close(reported)
		c.report(pod)
	})
	defer func() {
		if !slow.Stop() {
			<-reported
		}
	}()
	containerEvent(c.events, pod, ctr, "", corev1.EventTypeNormal, eventPulling, "Pulling image %q", image)
	began := time.Now()
	_, err := c.pullWithSecrets(ctx, pod, &runtimev1.PullImageRequest{
		Node:   c.node,
		Image:  ctr.Image,
		Always: ctr.ImagePullPolicy == corev1.PullAlways,
	})
	if err == nil {
		took := time.Since(began).Truncate(time.Millisecond)
		containerEvent(c.events, pod, ctr, "", corev1.EventTypeNormal, eventPulled, "Successfully pulled image %q in %s (%s including waiting)", image, took, took)
		c.backoff.Reset(key)
		return 0, nil
	}
	if ctx.Err() != nil {
		return 0, ctx.Err()
	}
	msg := status.Convert(err).Message()
	c.waiting.set(pod.UID, ctr.Name, &waitReason{"ErrImagePull", msg})
	containerEvent(c.events, pod, ctr, "", corev1.EventTypeWarning, eventFailed, "Failed to pull image %q: %s", image, msg)
	containerEvent(c.events, pod, ctr, "", corev1.EventTypeWarning, eventFailed, "Error: ErrImagePull")
	c.backoff.Next(key, time.Now())
	return c.backoff.Get(key), nil
}

// present asks the runtime whether the image is on the node, without
// pulling it (a pull with policy Never). An absent image is (false, nil).
func (c *imagePuller) present(ctx context.Context, image string) (bool, error) {
	_, err := c.runtime.PullImage(ctx, &runtimev1.PullImageRequest{Node: c.node, Image: image, Never: true})
	switch status.Code(err) {
	case codes.OK:
		return true, nil
	case codes.FailedPrecondition, codes.NotFound:
		return false, nil
	}
	return false, err
}

// withDefaultTag names the image as the kubelet does in its pull events:
// with ":latest" when it has neither tag nor digest.
func withDefaultTag(image string) string {
	if strings.Contains(image, "@") {
		return image
	}
	last := image[strings.LastIndex(image, "/")+1:]
	if strings.Contains(last, ":") {
		return image
	}
	return image + ":latest"
}
