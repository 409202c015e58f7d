package pod

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"
)

// fakeEnv serves ConfigMaps and Secrets from maps, as the API server would.
type fakeEnv struct {
	configMaps  map[string]*corev1.ConfigMap
	secrets     map[string]*corev1.Secret
	allocatable corev1.ResourceList
	svcs        map[string][]*corev1.Service // by namespace
}

func (f *fakeEnv) configMap(_ context.Context, _ *corev1.Pod, name string) (*corev1.ConfigMap, error) {
	if cm, ok := f.configMaps[name]; ok {
		return cm, nil
	}
	return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "configmap"}, name)
}

func (f *fakeEnv) secret(_ context.Context, _ *corev1.Pod, name string) (*corev1.Secret, error) {
	if s, ok := f.secrets[name]; ok {
		return s, nil
	}
	return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "secret"}, name)
}

func (f *fakeEnv) nodeIP() string                       { return "192.0.2.7" }
func (f *fakeEnv) podIPs(*corev1.Pod) []string          { return nil }
func (f *fakeEnv) nodeAllocatable() corev1.ResourceList { return f.allocatable }
func (f *fakeEnv) services(namespace string) []*corev1.Service {
	return f.svcs[namespace]
}

func envPod() *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns", UID: "u-1",
			Labels: map[string]string{"app": "web", "tier": "front"}, Annotations: map[string]string{"note": "hi"}},
		Spec:   corev1.PodSpec{NodeName: "n1", ServiceAccountName: "sa"},
		Status: corev1.PodStatus{PodIP: "10.0.0.5"},
	}
}

func envMap(t *testing.T, pod *corev1.Pod, ctr *corev1.Container, src envSource) map[string]string {
	t.Helper()
	env, err := resolveEnv(context.Background(), pod, ctr, src)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, kv := range env {
		out[kv.Key] = kv.Value
	}
	return out
}

func TestEnvFromObjectsOverriddenByEnv(t *testing.T) {
	src := &fakeEnv{
		configMaps: map[string]*corev1.ConfigMap{"cfg": {Data: map[string]string{"MODE": "fast", "LEVEL": "3"}}},
		secrets:    map[string]*corev1.Secret{"creds": {Data: map[string][]byte{"password": []byte("s3cret")}}},
	}
	ctr := &corev1.Container{
		Name: "app",
		EnvFrom: []corev1.EnvFromSource{
			{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}}},
			{Prefix: "DB_", SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "creds"}}},
			{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "absent"}, Optional: ptr.To(true)}},
		},
		Env: []corev1.EnvVar{
			{Name: "LEVEL", Value: "9"},
			{Name: "URL", Value: "db://$(DB_password)@host/$(MODE)"},
			{Name: "FROM_KEY", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}, Key: "MODE"}}},
			{Name: "SECRET", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: "creds"}, Key: "password"}}},
			{Name: "MAYBE", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: "creds"}, Key: "absent", Optional: ptr.To(true)}}},
		},
	}
	got := envMap(t, envPod(), ctr, src)
	want := map[string]string{
		"MODE": "fast", "LEVEL": "9", "DB_password": "s3cret",
		"URL": "db://s3cret@host/fast", "FROM_KEY": "fast", "SECRET": "s3cret",
	}
	if len(got) != len(want) {
		t.Errorf("env = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
}

// A missing object or key keeps the container from starting with a message
// naming it, and never a value.
func TestEnvMissingReferencesNameWhatIsMissing(t *testing.T) {
	src := &fakeEnv{
		configMaps: map[string]*corev1.ConfigMap{"cfg": {Data: map[string]string{"A": "a"}}},
		secrets:    map[string]*corev1.Secret{"creds": {Data: map[string][]byte{"password": []byte("s3cret")}}},
	}
	key := func(kind, name, k string) corev1.EnvVar {
		if kind == "cm" {
			return corev1.EnvVar{Name: "V", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: name}, Key: k}}}
		}
		return corev1.EnvVar{Name: "V", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: name}, Key: k}}}
	}
	cases := []struct {
		env  corev1.EnvVar
		from []corev1.EnvFromSource
		want string
	}{
		{env: key("cm", "nope", "A"), want: `configmap "nope" not found`},
		{env: key("cm", "cfg", "B"), want: "couldn't find key B in ConfigMap ns/cfg"},
		{env: key("secret", "nope", "x"), want: `secret "nope" not found`},
		{env: key("secret", "creds", "user"), want: "couldn't find key user in Secret ns/creds"},
		{from: []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "gone"}}}}, want: `secret "gone" not found`},
	}
	for _, tc := range cases {
		ctr := &corev1.Container{Name: "app", EnvFrom: tc.from}
		if tc.env.Name != "" {
			ctr.Env = []corev1.EnvVar{tc.env}
		}
		_, err := resolveEnv(context.Background(), envPod(), ctr, src)
		if err == nil || err.Error() != tc.want {
			t.Errorf("error = %v, want %q", err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("error %q holds a secret value", err)
		}
	}
}

func TestEnvFieldRefs(t *testing.T) {
	pod := envPod()
	fields := map[string]string{
		"metadata.name":                "web",
		"metadata.namespace":           "ns",
		"metadata.uid":                 "u-1",
		"metadata.labels['app']":       "web",
		"metadata.annotations['note']": "hi",
		"metadata.labels":              "app=\"web\"\ntier=\"front\"",
		"spec.nodeName":                "n1",
		"spec.serviceAccountName":      "sa",
		"status.hostIP":                "192.0.2.7",
		"status.podIP":                 "10.0.0.5",
	}
	ctr := &corev1.Container{Name: "app"}
	names := map[string]string{}
	for path := range fields {
		name := strings.NewReplacer(".", "_", "[", "_", "]", "", "'", "").Replace(path)
		names[name] = path
		ctr.Env = append(ctr.Env, corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: path}}})
	}
	got := envMap(t, pod, ctr, &fakeEnv{})
	for name, path := range names {
		if got[name] != fields[path] {
			t.Errorf("%s = %q, want %q", path, got[name], fields[path])
		}
	}
	// A host-network pod's IP is the node's.
	pod.Spec.HostNetwork = true
	ctr.Env = []corev1.EnvVar{{Name: "IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}}}
	if got := envMap(t, pod, ctr, &fakeEnv{})["IP"]; got != "192.0.2.7" {
		t.Errorf("host-network podIP = %q", got)
	}
}

func TestEnvResourceFieldRefs(t *testing.T) {
	pod := envPod()
	pod.Spec.Containers = []corev1.Container{
		{Name: "app", Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
			Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("128Mi")},
		}},
		{Name: "other", Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1500m")}}},
	}
	ref := func(name, res, divisor, container string) corev1.EnvVar {
		sel := &corev1.ResourceFieldSelector{Resource: res, ContainerName: container}
		if divisor != "" {
			sel.Divisor = resource.MustParse(divisor)
		}
		return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: sel}}
	}
	ctr := &pod.Spec.Containers[0]
	ctr.Env = []corev1.EnvVar{
		ref("REQ_CPU", "requests.cpu", "", ""),          // 250m in cores, rounded up
		ref("REQ_CPU_M", "requests.cpu", "1m", ""),      // in millicores
		ref("LIM_MEM_MI", "limits.memory", "1Mi", ""),   // 128
		ref("REQ_MEM", "requests.memory", "", ""),       // bytes
		ref("LIM_CPU", "limits.cpu", "", ""),            // unset: the node's 4 cores
		ref("OTHER_CPU_M", "limits.cpu", "1m", "other"), // another container's
	}
	src := &fakeEnv{allocatable: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4"), corev1.ResourceMemory: resource.MustParse("8Gi")}}
	got := envMap(t, pod, ctr, src)
	want := map[string]string{"REQ_CPU": "1", "REQ_CPU_M": "250", "LIM_MEM_MI": "128", "REQ_MEM": "67108864", "LIM_CPU": "4", "OTHER_CPU_M": "1500"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
}

// Containers get the variables of their namespace's Services and of the
// cluster's "kubernetes" Service; env overrides them, and a pod without
// service links gets only the API server's.
func TestServiceEnv(t *testing.T) {
	svc := func(ns, name, ip string, ports ...corev1.ServicePort) *corev1.Service {
		return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: corev1.ServiceSpec{ClusterIP: ip, Ports: ports}}
	}
	src := &fakeEnv{svcs: map[string][]*corev1.Service{
		"default": {svc("default", "kubernetes", "10.0.0.1", corev1.ServicePort{Name: "https", Port: 443, Protocol: corev1.ProtocolTCP})},
		"ns": {
			svc("ns", "my-db", "10.0.0.20", corev1.ServicePort{Name: "sql", Port: 5432}),
			svc("ns", "headless", corev1.ClusterIPNone, corev1.ServicePort{Port: 80}),
		},
	}}
	pod := envPod()
	ctr := &corev1.Container{Name: "app", Env: []corev1.EnvVar{{Name: "MY_DB_SERVICE_PORT", Value: "overridden"}}}
	got := envMap(t, pod, ctr, src)
	for k, v := range map[string]string{
		"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443", "KUBERNETES_SERVICE_PORT_HTTPS": "443",
		"KUBERNETES_PORT": "tcp://10.0.0.1:443", "KUBERNETES_PORT_443_TCP_ADDR": "10.0.0.1", "KUBERNETES_PORT_443_TCP_PROTO": "tcp",
		"MY_DB_SERVICE_HOST": "10.0.0.20", "MY_DB_SERVICE_PORT": "overridden", "MY_DB_PORT_5432_TCP": "tcp://10.0.0.20:5432",
	} {
		if got[k] != v {
			t.Errorf("%s=%q, want %q", k, got[k], v)
		}
	}
	if _, ok := got["HEADLESS_SERVICE_HOST"]; ok {
		t.Error("a headless Service got variables")
	}
	no := false
	pod.Spec.EnableServiceLinks = &no
	got = envMap(t, pod, &corev1.Container{Name: "app"}, src)
	if _, ok := got["MY_DB_SERVICE_HOST"]; ok || got["KUBERNETES_SERVICE_HOST"] != "10.0.0.1" {
		t.Errorf("without service links: %v, want only the API server's", got)
	}
}
