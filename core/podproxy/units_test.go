package podproxy

import (
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The backend's status keeps its own view but the host, which is the
// virtual node, and what the hub decided itself.
func TestHubStatus(t *testing.T) {
	hubScheduled := corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, Reason: "bound to the virtual node"}
	pod := &corev1.Pod{Status: corev1.PodStatus{
		QOSClass:   corev1.PodQOSBurstable,
		Conditions: []corev1.PodCondition{hubScheduled},
	}}
	backend := &corev1.PodStatus{
		Phase:              corev1.PodRunning,
		HostIP:             "192.0.2.9",
		HostIPs:            []corev1.HostIP{{IP: "192.0.2.9"}},
		PodIP:              "10.1.2.3",
		PodIPs:             []corev1.PodIP{{IP: "10.1.2.3"}},
		NominatedNodeName:  "member-node-a",
		QOSClass:           corev1.PodQOSBestEffort,
		ObservedGeneration: 7,
		Conditions: []corev1.PodCondition{
			{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, Reason: "member scheduler"},
			{Type: corev1.PodReady, Status: corev1.ConditionTrue, ObservedGeneration: 7},
		},
	}
	st := hubStatus(pod, backend, "203.0.113.5")
	if st.HostIP != "203.0.113.5" || len(st.HostIPs) != 1 || st.HostIPs[0].IP != "203.0.113.5" {
		t.Errorf("host %q %v, want the virtual node's address", st.HostIP, st.HostIPs)
	}
	if st.PodIP != "10.1.2.3" || st.Phase != corev1.PodRunning {
		t.Errorf("pod IP %q phase %s: the backend's must stay", st.PodIP, st.Phase)
	}
	if st.NominatedNodeName != "" || st.QOSClass != corev1.PodQOSBurstable || st.ObservedGeneration != 0 {
		t.Errorf("nominated %q, QoS %s, observed generation %d: the hub's own must stay", st.NominatedNodeName, st.QOSClass, st.ObservedGeneration)
	}
	want := []corev1.PodCondition{hubScheduled, {Type: corev1.PodReady, Status: corev1.ConditionTrue}}
	if !slices.EqualFunc(st.Conditions, want, func(a, b corev1.PodCondition) bool {
		return a.Type == b.Type && a.Reason == b.Reason && a.ObservedGeneration == b.ObservedGeneration
	}) {
		t.Errorf("conditions %+v, want %+v", st.Conditions, want)
	}
	if backend.HostIP != "192.0.2.9" || backend.Conditions[1].ObservedGeneration != 7 {
		t.Error("the backend's status was modified")
	}

	// Without the virtual node's address, the pod keeps the host it had.
	pod.Status.HostIP = "203.0.113.1"
	if st := hubStatus(pod, backend, ""); st.HostIP != "203.0.113.1" || st.HostIPs != nil {
		t.Errorf("host %q %v without the node's address, want the pod's own", st.HostIP, st.HostIPs)
	}
}

func TestFinalAndLostStatuses(t *testing.T) {
	pod := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "a"}, {Name: "b"}}}}
	running := &corev1.PodStatus{
		Phase:      corev1.PodRunning,
		Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
		ContainerStatuses: []corev1.ContainerStatus{
			{Name: "a", Ready: true, State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0}}},
			{Name: "b", Ready: true, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}},
		},
	}
	final := finalStatus(pod, running)
	if final.Phase != corev1.PodFailed {
		t.Errorf("phase %s with a container whose end is unknown, want Failed", final.Phase)
	}
	b := final.ContainerStatuses[1]
	if b.State.Terminated == nil || b.State.Terminated.Reason != reasonStatusUnknown || b.State.Terminated.ExitCode != exitCodeUnknown || b.Ready {
		t.Errorf("container whose end is unknown: %+v", b)
	}
	if c := findCondition(final.Conditions, corev1.PodReady); c == nil || c.Status != corev1.ConditionFalse {
		t.Errorf("Ready condition %+v, want False", c)
	}
	if running.ContainerStatuses[1].State.Running == nil {
		t.Error("the last status was modified")
	}

	done := running.DeepCopy()
	done.ContainerStatuses[1].State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0}}
	if st := finalStatus(pod, done); st.Phase != corev1.PodSucceeded {
		t.Errorf("phase %s when every container ended with 0, want Succeeded", st.Phase)
	}
	// A status with no container is no success.
	if st := finalStatus(pod, &corev1.PodStatus{Phase: corev1.PodPending}); st.Phase != corev1.PodFailed {
		t.Errorf("phase %s of a pod that never ran, want Failed", st.Phase)
	}

	lost := lostStatus(pod, done, "member-1")
	if lost.Phase != corev1.PodFailed || lost.Reason != ReasonPodLost || lost.Message == "" {
		t.Errorf("lost pod: phase %s reason %q message %q", lost.Phase, lost.Reason, lost.Message)
	}
}

func TestPodReferences(t *testing.T) {
	yes := true
	ref := func(name string) corev1.LocalObjectReference { return corev1.LocalObjectReference{Name: name} }
	pod := &corev1.Pod{Spec: corev1.PodSpec{
		InitContainers: []corev1.Container{{EnvFrom: []corev1.EnvFromSource{
			{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: ref("shared"), Optional: &yes}},
			{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: ref("init-secret")}},
		}}},
		Containers: []corev1.Container{{Env: []corev1.EnvVar{
			{Name: "PLAIN", Value: "x"},
			{Name: "A", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: ref("shared"), Key: "a"}}},
			{Name: "B", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: ref("maybe"), Key: "b", Optional: &yes}}},
			{Name: "C", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
		}}},
		EphemeralContainers: []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{
			EnvFrom: []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: ref("debug")}}},
		}}},
		Volumes: []corev1.Volume{
			{Name: "v1", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: ref("vol-cm"), Optional: &yes}}},
			{Name: "v2", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "vol-secret"}}},
			{Name: "v3", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
				{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: ref("kube-root-ca.crt")}},
				{Secret: &corev1.SecretProjection{LocalObjectReference: ref("maybe")}},
				{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token"}},
			}}}},
			{Name: "v4", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		},
		ImagePullSecrets: []corev1.LocalObjectReference{ref("registry")},
	}}
	cms, secrets := podReferences(pod)
	wantCMs := []reference{{"debug", false}, {"shared", false}, {"vol-cm", true}}
	wantSecrets := []reference{{"init-secret", false}, {"maybe", false}, {"registry", true}, {"vol-secret", false}}
	if !slices.Equal(cms, wantCMs) {
		t.Errorf("ConfigMaps %+v, want %+v (one required reference makes it required; never the root CA)", cms, wantCMs)
	}
	if !slices.Equal(secrets, wantSecrets) {
		t.Errorf("Secrets %+v, want %+v (image pull secrets optional)", secrets, wantSecrets)
	}
}

func TestFingerprintFollowsWhatCreatePodUpdates(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "a"}, Generation: 1}}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "c", UID: "u", ResourceVersion: "1"}}
	deps := &dependencies{configMaps: []*corev1.ConfigMap{cm}}
	first := fingerprint(pod, deps)
	if fingerprint(pod.DeepCopy(), deps) != first {
		t.Fatal("the same pod and objects gave another fingerprint")
	}
	changes := map[string]func(*corev1.Pod, *corev1.ConfigMap){
		"label":            func(p *corev1.Pod, _ *corev1.ConfigMap) { p.Labels["app"] = "b" },
		"annotation":       func(p *corev1.Pod, _ *corev1.ConfigMap) { p.Annotations = map[string]string{"x": "y"} },
		"generation":       func(p *corev1.Pod, _ *corev1.ConfigMap) { p.Generation = 2 },
		"object version":   func(_ *corev1.Pod, c *corev1.ConfigMap) { c.ResourceVersion = "2" },
		"object recreated": func(_ *corev1.Pod, c *corev1.ConfigMap) { c.UID = "v" },
	}
	for name, change := range changes {
		p, c := pod.DeepCopy(), cm.DeepCopy()
		change(p, c)
		if fingerprint(p, &dependencies{configMaps: []*corev1.ConfigMap{c}}) == first {
			t.Errorf("a changed %s left the fingerprint as it was", name)
		}
	}
}

func TestDeletionGrace(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *metav1.Time { t := metav1.NewTime(now.Add(d)); return &t }
	thirty := int64(30)
	cases := []struct {
		name     string
		deletion *metav1.Time
		period   *int64
		want     int64
	}{
		{"what is left, rounded up", at(12500 * time.Millisecond), &thirty, 13},
		{"past its end", at(-5 * time.Second), &thirty, minGrace},
		{"never more than the period (clock skew)", at(45 * time.Second), &thirty, 30},
		{"no period given", at(45 * time.Second), nil, 45},
		{"not deleted", nil, nil, minGrace},
	}
	for _, tc := range cases {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{DeletionTimestamp: tc.deletion, DeletionGracePeriodSeconds: tc.period}}
		if got := deletionGrace(pod, now); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
}
