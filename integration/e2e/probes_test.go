package e2e

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// freeHostPort returns a port of the host nothing listens on right now.
func freeHostPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func execProbe(script string) corev1.ProbeHandler {
	return corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"sh", "-c", script}}}
}

// podReady says whether the pod's Ready condition is true.
func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// containerReady says whether the named container is ready.
func containerReady(p *corev1.Pod, name string) bool {
	for _, cs := range p.Status.ContainerStatuses {
		if cs.Name == name {
			return cs.Ready
		}
	}
	return false
}

// waitEvent waits for an event of that reason about the container whose
// message starts with prefix.
func waitEvent(t *testing.T, ns, pod, reason, fieldPath, prefix string) {
	t.Helper()
	waitFor(t, 2*time.Minute, fmt.Sprintf("%s event %q on %s", reason, prefix, pod), func() (bool, string) {
		return hasEvent(podEvents(t, ns, pod, reason, fieldPath), prefix, true), describeEvents(podEvents(t, ns, pod, "", ""))
	})
}

// TestProbeExecReadiness: a running container with an exec readiness probe
// is not ready, nor is its pod, until the probe succeeds.
func TestProbeExecReadiness(t *testing.T) {
	ns := namespace(t)
	p := busyboxPod("ready-file", "exec sleep 3600", corev1.RestartPolicyAlways)
	p.Spec.Containers[0].ReadinessProbe = &corev1.Probe{ProbeHandler: execProbe("test -f /tmp/ready"), PeriodSeconds: 1, FailureThreshold: 1}
	createPod(t, ns, p)

	waitEvent(t, ns, "ready-file", "Unhealthy", "spec.containers{main}", "Readiness probe failed: ")
	got := waitPod(t, ns, "ready-file", time.Minute, "Running", phaseIs(corev1.PodRunning))
	if podReady(got) || containerReady(got, "main") {
		t.Fatalf("ready while its readiness probe fails: %+v", got.Status)
	}
	if cs := got.Status.ContainerStatuses[0]; cs.Started == nil || !*cs.Started || cs.State.Running == nil {
		t.Errorf("a running container without a startup probe: %+v", cs)
	}
	if _, err := kubectl(t, "-n", ns, "exec", "ready-file", "--", "touch", "/tmp/ready"); err != nil {
		t.Fatal(err)
	}
	got = waitPod(t, ns, "ready-file", time.Minute, "Ready", podReady)
	if !containerReady(got, "main") {
		t.Errorf("pod Ready, container not: %+v", got.Status.ContainerStatuses)
	}
}

// TestProbeLivenessRestarts: a liveness probe that starts failing kills the
// container (Unhealthy, then Killing), and the restart policy restarts it.
// The startup probe gates the liveness probe meanwhile.
func TestProbeLivenessRestarts(t *testing.T) {
	ns := namespace(t)
	const main = "spec.containers{main}"
	p := busyboxPod("liveness", "touch /tmp/alive; sleep 3; rm /tmp/alive; exec sleep 3600", corev1.RestartPolicyAlways)
	p.Spec.Containers[0].StartupProbe = &corev1.Probe{ProbeHandler: execProbe("test -f /tmp/alive"), PeriodSeconds: 1, FailureThreshold: 30}
	p.Spec.Containers[0].LivenessProbe = &corev1.Probe{
		ProbeHandler: execProbe("test -f /tmp/alive"), PeriodSeconds: 1, FailureThreshold: 2,
		TerminationGracePeriodSeconds: ptr.To[int64](1),
	}
	createPod(t, ns, p)

	waitPod(t, ns, "liveness", time.Minute, "started", func(p *corev1.Pod) bool {
		cs := p.Status.ContainerStatuses
		return len(cs) == 1 && cs[0].Started != nil && *cs[0].Started
	})
	got := waitPod(t, ns, "liveness", 2*time.Minute, "restarted", func(p *corev1.Pod) bool {
		return len(p.Status.ContainerStatuses) == 1 && p.Status.ContainerStatuses[0].RestartCount >= 1
	})
	if cs := got.Status.ContainerStatuses[0]; cs.LastTerminationState.Terminated == nil {
		t.Errorf("restarted container without a last state: %+v", cs)
	}
	waitEvent(t, ns, "liveness", "Unhealthy", main, "Liveness probe failed: ")
	waitEvent(t, ns, "liveness", "Killing", main, "Container main failed liveness probe, will be restarted")
	if events := podEvents(t, ns, "liveness", "Unhealthy", main); !hasEvent(events, "Liveness probe failed: ", true) || events[0].Type != corev1.EventTypeWarning {
		t.Errorf("Unhealthy events: %s", describeEvents(events))
	}
}

// TestProbeHTTPGetReadiness: httpGet readiness probes against busybox httpd
// in a host-network pod, by port name: a page that exists makes its
// container ready, a missing one keeps the other container, and the pod,
// not ready.
func TestProbeHTTPGetReadiness(t *testing.T) {
	ns := namespace(t)
	port := freeHostPort(t)
	web := fmt.Sprintf("mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p %d -h /www", port)
	p := busyboxPod("httpd", web, corev1.RestartPolicyAlways)
	p.Spec.HostNetwork = true
	p.Spec.Containers[0].Ports = []corev1.ContainerPort{{Name: "http", ContainerPort: int32(port)}}
	p.Spec.Containers[0].ReadinessProbe = &corev1.Probe{
		ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/index.html", Port: intstr.FromString("http")}},
		PeriodSeconds: 1,
	}
	p.Spec.Containers = append(p.Spec.Containers, corev1.Container{
		Name: "watcher", Image: env.Image(), ImagePullPolicy: corev1.PullIfNotPresent,
		Command: []string{"sleep", "3600"},
		ReadinessProbe: &corev1.Probe{
			ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/missing", Port: intstr.FromInt(port)}},
			PeriodSeconds: 1, FailureThreshold: 1,
		},
	})
	createPod(t, ns, p)

	got := waitPod(t, ns, "httpd", 2*time.Minute, "web ready", func(p *corev1.Pod) bool { return containerReady(p, "main") })
	if podReady(got) || containerReady(got, "watcher") {
		t.Errorf("ready though a probe gets 404: %+v", got.Status)
	}
	waitEvent(t, ns, "httpd", "Unhealthy", "spec.containers{watcher}", "Readiness probe failed: HTTP probe failed with statuscode: 404")
}

// TestProbeClosedPort: tcpSocket and grpc probes on a port nothing listens
// on fail as probes (events, not ready) and crash nothing: the container
// keeps running, unrestarted, as long as its failure threshold is not met.
func TestProbeClosedPort(t *testing.T) {
	ns := namespace(t)
	port := freeHostPort(t)
	p := busyboxPod("closed", "exec sleep 3600", corev1.RestartPolicyAlways)
	p.Spec.HostNetwork = true
	p.Spec.Containers[0].ReadinessProbe = &corev1.Probe{
		ProbeHandler:  corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt(port)}},
		PeriodSeconds: 1, FailureThreshold: 1,
	}
	p.Spec.Containers[0].LivenessProbe = &corev1.Probe{
		ProbeHandler:  corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: int32(port)}},
		PeriodSeconds: 1, FailureThreshold: 1000,
	}
	createPod(t, ns, p)

	waitEvent(t, ns, "closed", "Unhealthy", "spec.containers{main}", "Readiness probe failed: dial tcp ")
	waitEvent(t, ns, "closed", "Unhealthy", "spec.containers{main}", "Liveness probe failed: error: health rpc probe failed")
	got := waitPod(t, ns, "closed", time.Minute, "Running", phaseIs(corev1.PodRunning))
	cs := got.Status.ContainerStatuses[0]
	if cs.RestartCount != 0 || cs.State.Running == nil || cs.Ready || podReady(got) {
		t.Errorf("after failing probes below the liveness threshold: %+v", cs)
	}
	if events := podEvents(t, ns, "closed", "Unhealthy", ""); !strings.Contains(describeEvents(events), "connection refused") {
		t.Errorf("Unhealthy events do not say why: %s", describeEvents(events))
	}
	if events := podEvents(t, ns, "closed", "Killing", ""); len(events) != 0 {
		t.Errorf("killed: %s", describeEvents(events))
	}
}
