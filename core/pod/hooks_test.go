package pod

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

func TestHookPort(t *testing.T) {
	ctr := &corev1.Container{Name: "web", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}}
	cases := map[intstr.IntOrString]int{intstr.FromInt(81): 81, intstr.FromString("http"): 8080, intstr.FromString("82"): 82}
	for in, want := range cases {
		if got, err := hookPort(in, ctr); err != nil || got != want {
			t.Errorf("hookPort(%v) = %d, %v; want %d", in, got, err, want)
		}
	}
	if _, err := hookPort(intstr.FromString("nope"), ctr); err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("unknown port name: %v", err)
	}
}

func TestPodGrace(t *testing.T) {
	pod := &corev1.Pod{}
	if got := podGrace(pod); got != corev1.DefaultTerminationGracePeriodSeconds {
		t.Errorf("default grace = %d", got)
	}
	pod.Spec.TerminationGracePeriodSeconds = ptr.To[int64](7)
	if got := podGrace(pod); got != 7 {
		t.Errorf("spec grace = %d", got)
	}
	pod.DeletionGracePeriodSeconds = ptr.To[int64](3)
	if got := podGrace(pod); got != 3 {
		t.Errorf("deletion grace = %d", got)
	}
}

func TestBoundedBufferKeepsTheStart(t *testing.T) {
	var b boundedBuffer
	for range 3 {
		if n, err := b.Write([]byte(strings.Repeat("x", hookOutputLimit/2+1))); err != nil || n != hookOutputLimit/2+1 {
			t.Fatalf("write = %d, %v", n, err)
		}
	}
	if b.Len() != hookOutputLimit {
		t.Errorf("kept %d bytes, want %d", b.Len(), hookOutputLimit)
	}
}

func TestWithDefaultTag(t *testing.T) {
	cases := map[string]string{
		"busybox":                        "busybox:latest",
		"busybox:1.36":                   "busybox:1.36",
		"127.0.0.1:5000/busybox":         "127.0.0.1:5000/busybox:latest",
		"127.0.0.1:5000/busybox:v1":      "127.0.0.1:5000/busybox:v1",
		"registry/app@sha256:0123456789": "registry/app@sha256:0123456789",
	}
	for in, want := range cases {
		if got := withDefaultTag(in); got != want {
			t.Errorf("withDefaultTag(%q) = %q, want %q", in, got, want)
		}
	}
}
