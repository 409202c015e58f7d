package pod

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestExpand(t *testing.T) {
	values := map[string]string{"A": "x", "B": "y z"}
	cases := map[string]string{
		"plain":      "plain",
		"$(A)":       "x",
		"a-$(B)-c":   "a-y z-c",
		"$(UNKNOWN)": "$(UNKNOWN)",
		"$$(A)":      "$(A)",
		"cost $5":    "cost $5",
		"open $(A":   "open $(A",
		"$(A)$(B)$":  "xy z$",
	}
	for in, want := range cases {
		if got := expand(in, values); got != want {
			t.Errorf("expand(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestContainerSpecEnvAndExpansion(t *testing.T) {
	pod := &corev1.Pod{}
	ctr := &corev1.Container{
		Name: "c", Image: "img",
		Command:                []string{"sh", "-c"},
		Args:                   []string{"echo $(GREETING) $(NAME)"},
		TerminationMessagePath: "/dev/termination-log",
		Env: []corev1.EnvVar{
			{Name: "NAME", Value: "world"},
			{Name: "GREETING", Value: "hello-$(NAME)"},
		},
	}
	env, err := resolveEnv(context.Background(), pod, ctr, &fakeEnv{})
	if err != nil {
		t.Fatal(err)
	}
	spec, err := containerSpec(pod, ctr, env)
	if err != nil {
		t.Fatal(err)
	}
	if got := spec.Args[0]; got != "echo hello-world world" {
		t.Errorf("args = %q", got)
	}
	if spec.Env[1].Value != "hello-world" {
		t.Errorf("env = %v", spec.Env)
	}
	if spec.TerminationMessagePath != "/dev/termination-log" {
		t.Errorf("termination message path = %q", spec.TerminationMessagePath)
	}
}

func TestUnsupportedNamesEachFeature(t *testing.T) {
	always := corev1.ContainerRestartPolicyAlways
	pod := &corev1.Pod{Spec: corev1.PodSpec{
		InitContainers: []corev1.Container{{Name: "init"}, {Name: "sidecar", RestartPolicy: &always}},
		Volumes: []corev1.Volume{
			{Name: "kube-api-access-abcde", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{}}},
			{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		},
		Containers: []corev1.Container{{
			Name: "app",
			Env: []corev1.EnvVar{
				{Name: "X", ValueFrom: &corev1.EnvVarSource{FileKeyRef: &corev1.FileKeySelector{}}},
				{Name: "Y", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{}}},
			},
			SecurityContext: &corev1.SecurityContext{SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeLocalhost}},
		}},
	}}
	msg := unsupported(pod, false, false)
	for _, want := range []string{`sidecar init container "sidecar"`, `volume "data"`, `env X from a file in container "app"`, `a Localhost seccomp profile in container "app"`} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q does not name %q", msg, want)
		}
	}
	for _, supported := range []string{"kube-api-access", `"init"`, "env Y"} {
		if strings.Contains(msg, supported) {
			t.Errorf("message %q names %s, which is supported", msg, supported)
		}
	}
	if got := unsupported(&corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}}}}, false, false); got != "" {
		t.Errorf("plain pod reported: %q", got)
	}
	// A node that makes volumes makes the emptyDir; a hostPath it refuses.
	pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/"}}})
	msg = unsupported(pod, false, true)
	if strings.Contains(msg, `volume "data"`) || !strings.Contains(msg, `volume "host"`) {
		t.Errorf("with volumes made: %q, want the hostPath named and the emptyDir not", msg)
	}
}
