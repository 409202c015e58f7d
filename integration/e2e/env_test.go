package e2e

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/utils/ptr"
)

func configMapKey(name, key string, optional bool) *corev1.EnvVarSource {
	return &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
		LocalObjectReference: corev1.LocalObjectReference{Name: name}, Key: key, Optional: &optional}}
}

func secretKey(name, key string, optional bool) *corev1.EnvVarSource {
	return &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
		LocalObjectReference: corev1.LocalObjectReference{Name: name}, Key: key, Optional: &optional}}
}

func fieldRef(path string) *corev1.EnvVarSource {
	return &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: path}}
}

// envLines runs `env` in a pod with the given container and returns its
// variables.
func envOf(t *testing.T, ns, name string) map[string]string {
	t.Helper()
	out, err := kubectl(t, "-n", ns, "logs", name)
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{}
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			vars[k] = v
		}
	}
	return vars
}

// TestEnvFromReferences: a container's environment comes from ConfigMaps,
// Secrets, the pod's own fields and its resources, as the kubelet gives it;
// no secret value reaches the agent's or the runtime's logs.
func TestEnvFromReferences(t *testing.T) {
	ns := namespace(t)
	ctx := context.Background()
	secretValue := "s3cret-" + rand.String(12)
	_, err := env.Client().CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "settings"}, Data: map[string]string{"MODE": "fast", "LEVEL": "3"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = env.Client().CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "creds"}, Data: map[string][]byte{"password": []byte(secretValue)},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}

	pod := busyboxPod("env", "env", corev1.RestartPolicyNever)
	pod.Labels = map[string]string{"app": "web"}
	pod.Annotations = map[string]string{"note": "hello"}
	ctr := &pod.Spec.Containers[0]
	ctr.Resources = corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m"), corev1.ResourceMemory: resource.MustParse("32Mi")},
		Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
	}
	ctr.EnvFrom = []corev1.EnvFromSource{
		{Prefix: "CFG_", ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "settings"}}},
		{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "creds"}}},
		{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "absent"}, Optional: ptr.To(true)}},
	}
	ctr.Env = []corev1.EnvVar{
		{Name: "CFG_LEVEL", Value: "9"}, // env overrides envFrom
		{Name: "MODE", ValueFrom: configMapKey("settings", "MODE", false)},
		{Name: "PASSWORD", ValueFrom: secretKey("creds", "password", false)},
		{Name: "URL", Value: "db://$(PASSWORD)@db/$(MODE)"},
		{Name: "OPTIONAL_KEY", ValueFrom: configMapKey("settings", "NOPE", true)},
		{Name: "OPTIONAL_SECRET", ValueFrom: secretKey("absent", "x", true)},
		{Name: "POD_NAME", ValueFrom: fieldRef("metadata.name")},
		{Name: "POD_NAMESPACE", ValueFrom: fieldRef("metadata.namespace")},
		{Name: "POD_UID", ValueFrom: fieldRef("metadata.uid")},
		{Name: "APP_LABEL", ValueFrom: fieldRef("metadata.labels['app']")},
		{Name: "NOTE", ValueFrom: fieldRef("metadata.annotations['note']")},
		{Name: "NODE_NAME", ValueFrom: fieldRef("spec.nodeName")},
		{Name: "SERVICE_ACCOUNT", ValueFrom: fieldRef("spec.serviceAccountName")},
		{Name: "HOST_IP", ValueFrom: fieldRef("status.hostIP")},
		{Name: "POD_IP", ValueFrom: fieldRef("status.podIP")},
		{Name: "MEMORY_LIMIT_MI", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.memory", Divisor: resource.MustParse("1Mi")}}},
		{Name: "CPU_REQUEST_M", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "requests.cpu", Divisor: resource.MustParse("1m")}}},
		{Name: "CPU_LIMIT", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.cpu"}}},
	}
	created := createPod(t, ns, pod)
	p := waitPod(t, ns, "env", time.Minute, "Succeeded", phaseIs(corev1.PodSucceeded))
	got := envOf(t, ns, "env")
	want := map[string]string{
		"CFG_MODE": "fast", "CFG_LEVEL": "9", "password": secretValue,
		"MODE": "fast", "PASSWORD": secretValue, "URL": "db://" + secretValue + "@db/fast",
		"POD_NAME": "env", "POD_NAMESPACE": ns, "POD_UID": string(created.UID),
		"APP_LABEL": "web", "NOTE": "hello", "NODE_NAME": env.NodeName(), "SERVICE_ACCOUNT": "default",
		"HOST_IP": p.Status.HostIP, "POD_IP": p.Status.PodIP,
		"MEMORY_LIMIT_MI": "64", "CPU_REQUEST_M": "250", "CPU_LIMIT": "1",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s=%q, want %q", k, got[k], v)
		}
	}
	for _, absent := range []string{"OPTIONAL_KEY", "OPTIONAL_SECRET"} {
		if v, ok := got[absent]; ok {
			t.Errorf("%s=%q set from a missing optional reference", absent, v)
		}
	}
	if got["HOST_IP"] == "" {
		t.Error("status.hostIP is empty")
	}
	// In-cluster clients find the API server, as under the kubelet.
	api, err := env.Client().CoreV1().Services("default").Get(context.Background(), "kubernetes", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got["KUBERNETES_SERVICE_HOST"] != api.Spec.ClusterIP || got["KUBERNETES_SERVICE_PORT"] != "443" {
		t.Errorf("KUBERNETES_SERVICE_HOST=%q PORT=%q, want the kubernetes Service's %s:443", got["KUBERNETES_SERVICE_HOST"], got["KUBERNETES_SERVICE_PORT"], api.Spec.ClusterIP)
	}

	// The value went to the container, and nowhere else.
	logs, _ := filepath.Glob(filepath.Join(env.Paths().Logs, "*.log"))
	for _, path := range logs {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(data, []byte(secretValue)) {
			t.Errorf("%s holds the secret's value", path)
		}
	}
}

// TestEnvWaitsForMissingReferences: a container whose required ConfigMap or
// key is missing waits with CreateContainerConfigError naming it, and
// starts as soon as it appears.
func TestEnvWaitsForMissingReferences(t *testing.T) {
	ns := namespace(t)
	ctx := context.Background()
	pod := busyboxPod("waits", "echo $VALUE", corev1.RestartPolicyNever)
	pod.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "VALUE", ValueFrom: configMapKey("later", "k", false)}}
	createPod(t, ns, pod)
	p := waitPod(t, ns, "waits", time.Minute, "waiting for its ConfigMap", func(p *corev1.Pod) bool {
		return waitingReason(p) == "CreateContainerConfigError"
	})
	if msg := p.Status.ContainerStatuses[0].State.Waiting.Message; msg != `configmap "later" not found` {
		t.Errorf("message %q", msg)
	}
	if events := waitEvents(t, ns, "waits", "Failed", "spec.containers{main}"); !hasEvent(events, `Error: configmap "later" not found`, false) {
		t.Errorf("events: %s", describeEvents(events))
	}

	cm, err := env.Client().CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "later"}, Data: map[string]string{"other": "x"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitPod(t, ns, "waits", time.Minute, "waiting for the key", func(p *corev1.Pod) bool {
		w := p.Status.ContainerStatuses[0].State.Waiting
		return w != nil && w.Message == "couldn't find key k in ConfigMap "+ns+"/later"
	})
	cm.Data["k"] = "arrived"
	if _, err := env.Client().CoreV1().ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Sooner than the retry back-off (20 s by now) would: the change itself
	// re-syncs the pod.
	waitPod(t, ns, "waits", 15*time.Second, "Succeeded", phaseIs(corev1.PodSucceeded))
	if out, err := kubectl(t, "-n", ns, "logs", "waits"); err != nil || out != "arrived\n" {
		t.Errorf("logs = %q, %v", out, err)
	}
}
