package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
)

// waitEvents waits until the pod has events of that reason about that
// container (its field path, empty for the pod itself) and returns them.
func waitEvents(t *testing.T, ns, pod, reason, fieldPath string) []corev1.Event {
	t.Helper()
	var found []corev1.Event
	waitFor(t, time.Minute, fmt.Sprintf("a %s event on %s %s", reason, pod, fieldPath), func() (bool, string) {
		found = podEvents(t, ns, pod, reason, fieldPath)
		return len(found) > 0, describeEvents(podEvents(t, ns, pod, "", ""))
	})
	return found
}

// podEvents lists the pod's events, of one reason and container if given.
func podEvents(t *testing.T, ns, pod, reason, fieldPath string) []corev1.Event {
	t.Helper()
	list, err := env.Client().CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("involvedObject.name", pod).String(),
	})
	if err != nil {
		t.Fatalf("list events: %v", err)
	}
	var out []corev1.Event
	for _, e := range list.Items {
		if (reason == "" || e.Reason == reason) && (fieldPath == "" || e.InvolvedObject.FieldPath == fieldPath) {
			out = append(out, e)
		}
	}
	return out
}

func describeEvents(events []corev1.Event) string {
	var b strings.Builder
	for _, e := range events {
		fmt.Fprintf(&b, "\n  %s %s %s: %s", e.Type, e.Reason, e.InvolvedObject.FieldPath, e.Message)
	}
	return b.String()
}

// hasEvent says whether one of the events has exactly this message, or
// starts with it when prefix is set.
func hasEvent(events []corev1.Event, message string, prefix bool) bool {
	for _, e := range events {
		if e.Message == message || prefix && strings.HasPrefix(e.Message, message) {
			return true
		}
	}
	return false
}

// TestEventsAsTheKubeletRecordsThem: the reasons and messages `kubectl
// describe` shows for a pod's containers are the kubelet's.
func TestEventsAsTheKubeletRecordsThem(t *testing.T) {
	ns := namespace(t)
	const main = "spec.containers{main}"
	image := env.Image()

	pulled := busyboxPod("pulls", "sleep 3600", corev1.RestartPolicyAlways)
	pulled.Spec.Containers[0].ImagePullPolicy = corev1.PullAlways
	createPod(t, ns, pulled)
	waitPod(t, ns, "pulls", time.Minute, "Running", phaseIs(corev1.PodRunning))
	expect := func(pod, reason, message string, prefix bool) {
		t.Helper()
		var last []corev1.Event
		waitFor(t, time.Minute, fmt.Sprintf("%s event %q on %s", reason, message, pod), func() (bool, string) {
			last = podEvents(t, ns, pod, reason, main)
			return hasEvent(last, message, prefix), describeEvents(podEvents(t, ns, pod, "", ""))
		})
		for _, e := range last {
			if e.Source.Host != env.NodeName() || e.InvolvedObject.Kind != "Pod" {
				t.Errorf("%s event from %+v about %+v", reason, e.Source, e.InvolvedObject)
			}
		}
	}
	expect("pulls", "Pulling", fmt.Sprintf("Pulling image %q", image), false)
	expect("pulls", "Pulled", fmt.Sprintf("Successfully pulled image %q in ", image), true)
	expect("pulls", "Created", "Container created", false)
	expect("pulls", "Started", "Container started", false)

	createPod(t, ns, busyboxPod("present", "true", corev1.RestartPolicyNever))
	expect("present", "Pulled", fmt.Sprintf("Container image %q already present on machine", image), false)
	if events := podEvents(t, ns, "present", "Pulling", ""); len(events) != 0 {
		t.Errorf("Pulling events for an image present with policy IfNotPresent: %s", describeEvents(events))
	}

	if err := env.Client().CoreV1().Pods(ns).Delete(context.Background(), "pulls", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	expect("pulls", "Killing", "Stopping container main", false)

	host, _, _ := strings.Cut(image, "/")
	missing := busyboxPod("missing", "true", corev1.RestartPolicyNever)
	missing.Spec.Containers[0].Image = host + "/no-such-image"
	createPod(t, ns, missing)
	expect("missing", "Pulling", fmt.Sprintf("Pulling image %q", host+"/no-such-image:latest"), false)
	expect("missing", "Failed", fmt.Sprintf("Failed to pull image %q: ", host+"/no-such-image:latest"), true)
	expect("missing", "Failed", "Error: ErrImagePull", false)
	expect("missing", "BackOff", fmt.Sprintf("Back-off pulling image %q", host+"/no-such-image:latest"), false)
	expect("missing", "Failed", "Error: ImagePullBackOff", false)

	never := busyboxPod("never", "true", corev1.RestartPolicyNever)
	never.Spec.Containers[0].Image = host + "/not-here:v1"
	never.Spec.Containers[0].ImagePullPolicy = corev1.PullNever
	createPod(t, ns, never)
	expect("never", "ErrImageNeverPull", fmt.Sprintf("Container image %q is not present with pull policy of Never", host+"/not-here:v1"), false)
	p := waitPod(t, ns, "never", time.Minute, "waiting with ErrImageNeverPull", func(p *corev1.Pod) bool { return waitingReason(p) == "ErrImageNeverPull" })
	if msg := p.Status.ContainerStatuses[0].State.Waiting.Message; !strings.Contains(msg, "not present with pull policy of Never") {
		t.Errorf("waiting message %q", msg)
	}
}
