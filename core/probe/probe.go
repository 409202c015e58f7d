// Package probe runs a container's liveness, readiness and startup probes
// as the kubelet does: the four handlers (exec, httpGet, tcpSocket, grpc),
// and a worker per probe of each running container attempt that applies
// the probe's delays, period and thresholds and reports what it decided.
// The pod lifecycle (core/pod) owns the Manager, turns its results into
// the container's ready and started status, and kills an attempt whose
// liveness or startup probe failed.
package probe

import (
	"context"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/fedlet/fedlet/plugins/version"
)

// Kind is what a probe decides about its container. Its value is the word
// the kubelet's events start with ("Liveness probe failed: ...").
type Kind string

// The three kinds of probe.
const (
	Liveness  Kind = "Liveness"
	Readiness Kind = "Readiness"
	Startup   Kind = "Startup"
)

// Kinds lists every kind, in the order the kubelet starts their workers.
var Kinds = []Kind{Startup, Readiness, Liveness}

// Spec is the probe of this kind in the container's spec, or nil.
func (k Kind) Spec(ctr *corev1.Container) *corev1.Probe {
	switch k {
	case Liveness:
		return ctr.LivenessProbe
	case Readiness:
		return ctr.ReadinessProbe
	case Startup:
		return ctr.StartupProbe
	}
	return nil
}

// Result is what one run of a probe, or a probe over its thresholds, found.
type Result int

const (
	// Unknown: the probe could not be run (the runtime failed, a named
	// port does not exist). The kubelet throws such a run away: it counts
	// neither as a success nor as a failure.
	Unknown Result = iota
	// Success: the container answered as the probe asks.
	Success
	// Failure: it did not, or not in time.
	Failure
)

func (r Result) String() string {
	switch r {
	case Success:
		return "Success"
	case Failure:
		return "Failure"
	}
	return "Unknown"
}

// Outcome is one run of a probe.
type Outcome struct {
	Result Result
	// Message says why a probe failed or could not be run (a command's
	// output, an HTTP status, a connection error); on success it may hold
	// what the container answered.
	Message string
	// Warning marks a success worth telling, as the kubelet's ProbeWarning
	// event does: an HTTP redirect to another host, not followed.
	Warning bool
}

// Target is the container attempt a probe runs against.
type Target struct {
	Pod       *corev1.Pod
	Container *corev1.Container
	// ContainerID names the attempt; a new attempt starts its probes over.
	ContainerID string
	// PodIP is where httpGet, tcpSocket and grpc probes connect when the
	// probe names no host.
	PodIP string
}

// Execer runs a command in a running container, as the runtime plugin's
// Exec does.
type Execer interface {
	// ExecSync runs cmd in the container until it exits or ctx ends and
	// returns its exit code and its output (stdout then stderr, bounded).
	// err says the command could not be run or waited for (ctx's error
	// when ctx ended); a non-zero exit code is not an error.
	ExecSync(ctx context.Context, pod types.UID, container string, cmd []string) (exitCode int32, output string, err error)
}

// Runner runs one probe once; *Prober is the real one.
type Runner interface {
	Run(ctx context.Context, p *corev1.Probe, t Target) Outcome
}

// userAgent is the kubelet's for probes: kube-probe/MAJOR.MINOR of the
// Kubernetes version fedlet serves.
var userAgent = func() string {
	v := strings.TrimPrefix(version.Kubelet(), "v")
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return "kube-probe"
	}
	return "kube-probe/" + parts[0] + "." + parts[1]
}()
