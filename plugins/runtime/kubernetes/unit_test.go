package kubernetes

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/ptr"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

func TestParseConfig(t *testing.T) {
	good := `{"origin": "hub", "members": [{"node": "member-1", "kubeconfig": "/etc/m1.kubeconfig"}, {"node": "member-2", "kubeconfig": "/etc/m2", "namespace": "fed"}]}`
	c, err := ParseConfig([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if c.Origin != "hub" || len(c.Members) != 2 || c.Members[1].Namespace != "fed" || c.Members[0].Kubeconfig != "/etc/m1.kubeconfig" {
		t.Errorf("parsed %+v", c)
	}

	for _, tc := range []struct{ raw, want string }{
		{``, "empty"},
		{`{"origin": "hub", "members": [], "extra": 1}`, `config: unknown field "extra"`},
		{`{"origin": "hub", "members": [{"node": "a", "kubeconfig": "/k", "context": "x"}]}`, `config field members[0]: unknown field "context"`},
		{`{"origin": 3, "members": []}`, "config field origin: expected string"},
		{`{"members": [{"node": "a", "kubeconfig": "/k"}]}`, "config field origin: must be set"},
		{`{"origin": "not a label!", "members": [{"node": "a", "kubeconfig": "/k"}]}`, "config field origin"},
		{`{"origin": "hub", "members": [{"kubeconfig": "/k"}]}`, "config field members[0].node: must be set"},
		{`{"origin": "hub", "members": [{"node": "a", "kubeconfig": "/k"}, {"node": "a", "kubeconfig": "/k"}]}`, "config field members[1].node"},
		{`{"origin": "hub", "members": [{"node": "a"}]}`, "config field members[0].kubeconfig: must be set"},
		{`{"origin": "hub", "members": [{"node": "a", "kubeconfig": "rel/k"}]}`, "config field members[0].kubeconfig: \"rel/k\" is not an absolute path"},
		{`{"origin": "hub", "members": [{"node": "a", "kubeconfig": "/k", "namespace": "Not_A_Namespace"}]}`, "config field members[0].namespace"},
		{`{"origin": "hub", "members": [{"node": "a", "kubeconfig": "/k"}]} {}`, "unexpected data"},
		{`{"origin": "hub", "hub": {"kubeconfig": "rel/k"}}`, "config field hub.kubeconfig: \"rel/k\" is not an absolute path"},
		{`{"origin": "hub", "hub": {"kubeconfg": "/k"}}`, `config field hub: unknown field "kubeconfg"`},
	} {
		_, err := ParseConfig([]byte(tc.raw))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseConfig(%s) = %v, want an error containing %q", tc.raw, err, tc.want)
		}
	}
}

func TestDescribe(t *testing.T) {
	d, err := New(Options{}).Describe(context.Background(), &runtimev1.DescribeRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if d.GetName() != "kubernetes" {
		t.Errorf("name %q", d.GetName())
	}
	for _, c := range []runtimev1.Capability{runtimev1.Capability_CAPABILITY_OWN_NETWORK, runtimev1.Capability_CAPABILITY_WHOLE_PODS} {
		if !slices.Contains(d.GetCapabilities(), c) {
			t.Errorf("capabilities %v lack %v", d.GetCapabilities(), c)
		}
	}
}

func TestConfigureRefusesBadInput(t *testing.T) {
	b := New(Options{})
	defer b.Close()
	ctx := context.Background()
	cfg := []byte(`{"origin": "hub", "members": [{"node": "member-1", "kubeconfig": "/nonexistent/kubeconfig"}]}`)
	for _, tc := range []struct {
		name  string
		req   *runtimev1.ConfigureRequest
		field string
	}{
		{"unknown field", &runtimev1.ConfigureRequest{Config: []byte(`{"origin": "hub", "memberz": []}`)}, `unknown field "memberz"`},
		{"node without member", &runtimev1.ConfigureRequest{Config: cfg, Nodes: []string{"member-2"}}, `nodes[0]: node "member-2" has neither node_settings nor an entry`},
		{"settings without kubeconfig", &runtimev1.ConfigureRequest{Config: cfg, Nodes: []string{"extra"},
			NodeSettings: map[string]*runtimev1.NodeSettings{"extra": {Data: map[string][]byte{"namespace": []byte("x")}}}}, "node_settings[extra].kubeconfig: must be set"},
		{"settings with an unknown key", &runtimev1.ConfigureRequest{Config: cfg, Nodes: []string{"extra"},
			NodeSettings: map[string]*runtimev1.NodeSettings{"extra": {Data: map[string][]byte{"kubeconfig": []byte("x"), "kubecfg": nil}}}}, `node_settings[extra]: unknown key "kubecfg"`},
		{"settings with a broken kubeconfig", &runtimev1.ConfigureRequest{Config: cfg, Nodes: []string{"extra"},
			NodeSettings: map[string]*runtimev1.NodeSettings{"extra": {Data: map[string][]byte{"kubeconfig": []byte("{not yaml")}}}}, "node_settings[extra].kubeconfig: load the kubeconfig given for node extra"},
		{"unreadable kubeconfig", &runtimev1.ConfigureRequest{Config: cfg, Nodes: []string{"member-1"}}, "members[0].kubeconfig"},
	} {
		_, err := b.Configure(ctx, tc.req)
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%s: Configure = %v, want InvalidArgument naming %s", tc.name, err, tc.field)
		}
	}
	// Unconfigured, the other calls say so.
	if _, err := b.GetNode(ctx, &runtimev1.GetNodeRequest{Node: "member-1"}); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("GetNode before Configure = %v, want FailedPrecondition", err)
	}
	if _, err := b.RunSandbox(ctx, &runtimev1.RunSandboxRequest{Node: "member-1"}); status.Code(err) != codes.Unimplemented || !strings.Contains(err.Error(), "whole pods") {
		t.Errorf("RunSandbox = %v, want Unimplemented saying it runs whole pods", err)
	}
}

func hubPod() *corev1.Pod {
	yes := true
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: "web", Namespace: "shop", UID: "uid-1", ResourceVersion: "42",
			Labels:          map[string]string{"app": "web"},
			Annotations:     map[string]string{"note": "kept"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-1", UID: "rs", Controller: &yes}},
			Finalizers:      []string{"example.com/x"},
		},
		Spec: corev1.PodSpec{
			NodeName:           "member-1",
			ServiceAccountName: "builder",
			NodeSelector:       map[string]string{LabelMember: "member-1", "disk": "ssd", labelHostname: "member-1"},
			Tolerations: []corev1.Toleration{
				{Key: TaintProvider, Operator: corev1.TolerationOpEqual, Value: "fedlet", Effect: corev1.TaintEffectNoSchedule},
				{Key: "dedicated", Operator: corev1.TolerationOpExists},
			},
			Affinity: &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
				RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{
					{MatchExpressions: []corev1.NodeSelectorRequirement{
						{Key: LabelMember, Operator: corev1.NodeSelectorOpIn, Values: []string{"member-1"}},
						{Key: "zone", Operator: corev1.NodeSelectorOpIn, Values: []string{"a"}},
					}},
				}},
				PreferredDuringSchedulingIgnoredDuringExecution: []corev1.PreferredSchedulingTerm{
					{Weight: 1, Preference: corev1.NodeSelectorTerm{MatchFields: []corev1.NodeSelectorRequirement{
						{Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{"member-1"}},
					}}},
				},
			}},
			Volumes: []corev1.Volume{
				{Name: "kube-api-access-abcde", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
					Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token"}}},
				}}},
				{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "web-config"}}}},
			},
			Containers: []corev1.Container{{
				Name: "main", Image: "busybox",
				VolumeMounts: []corev1.VolumeMount{
					{Name: "kube-api-access-abcde", MountPath: "/var/run/secrets/kubernetes.io/serviceaccount"},
					{Name: "config", MountPath: "/config"},
				},
			}},
			Priority:       new(int32(1000)),
			ReadinessGates: []corev1.PodReadinessGate{{ConditionType: "example.com/ready"}},
		},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.244.0.5"},
	}
}

func TestReflectPod(t *testing.T) {
	hub := hubPod()
	before := hub.DeepCopy()
	got := reflectPod(hub, "hub", "member-1", "mapped", nil)

	if !equalPods(hub, before) {
		t.Error("reflectPod changed the hub pod")
	}
	if got.Name != "web" || got.Namespace != "mapped" || got.UID != "" || got.ResourceVersion != "" {
		t.Errorf("identity %s/%s uid %q rv %q", got.Namespace, got.Name, got.UID, got.ResourceVersion)
	}
	wantLabels := map[string]string{
		"app": "web", LabelOriginCluster: "hub", LabelOriginNamespace: "shop", LabelOriginName: "web",
		LabelOriginUID: "uid-1", LabelNode: "member-1",
	}
	for k, v := range wantLabels {
		if got.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, got.Labels[k], v)
		}
	}
	if got.Annotations["note"] != "kept" || got.Annotations[LabelOriginNamespace] != "shop" {
		t.Errorf("annotations %v", got.Annotations)
	}
	if len(got.OwnerReferences) != 0 || len(got.Finalizers) != 0 {
		t.Errorf("owners %v finalizers %v kept", got.OwnerReferences, got.Finalizers)
	}
	s := got.Spec
	if s.NodeName != "" || s.ServiceAccountName != "" || s.AutomountServiceAccountToken == nil || *s.AutomountServiceAccountToken {
		t.Errorf("nodeName %q serviceAccountName %q automount %v", s.NodeName, s.ServiceAccountName, s.AutomountServiceAccountToken)
	}
	if len(s.NodeSelector) != 1 || s.NodeSelector["disk"] != "ssd" {
		t.Errorf("nodeSelector %v, want only disk=ssd", s.NodeSelector)
	}
	if len(s.Tolerations) != 1 || s.Tolerations[0].Key != "dedicated" {
		t.Errorf("tolerations %v", s.Tolerations)
	}
	na := s.Affinity.NodeAffinity
	if na == nil || na.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		t.Fatalf("node affinity %v lost its zone requirement", s.Affinity)
	}
	terms := na.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
	if len(terms) != 1 || len(terms[0].MatchExpressions) != 1 || terms[0].MatchExpressions[0].Key != "zone" {
		t.Errorf("required terms %+v, want the zone requirement only", terms)
	}
	if len(na.PreferredDuringSchedulingIgnoredDuringExecution) != 0 {
		t.Errorf("preferred terms %+v, want none", na.PreferredDuringSchedulingIgnoredDuringExecution)
	}
	if len(s.Volumes) != 1 || s.Volumes[0].Name != "config" {
		t.Errorf("volumes %v, want config only", s.Volumes)
	}
	if m := s.Containers[0].VolumeMounts; len(m) != 1 || m[0].Name != "config" {
		t.Errorf("mounts %v, want config only", m)
	}
	if s.Priority != nil || s.ReadinessGates != nil {
		t.Errorf("priority %v readiness gates %v kept", s.Priority, s.ReadinessGates)
	}

	// With the Secret the agent made of the token volume, the volume stays,
	// as a Secret volume of it, mounted where it was.
	withToken := reflectPod(hub, "hub", "member-1", "mapped", map[string]string{"kube-api-access-abcde": "fedlet-sa-0123"})
	vols := withToken.Spec.Volumes
	if len(vols) != 2 || vols[0].Name != "kube-api-access-abcde" || vols[0].Secret == nil || vols[0].Secret.SecretName != "fedlet-sa-0123" || vols[0].Projected != nil {
		t.Errorf("volumes with the token's Secret: %+v", vols)
	}
	if m := withToken.Spec.Containers[0].VolumeMounts; len(m) != 2 || m[0].MountPath != "/var/run/secrets/kubernetes.io/serviceaccount" {
		t.Errorf("mounts with the token's Secret: %v", m)
	}
	if got.Status.Phase != "" || got.Status.PodIP != "" {
		t.Errorf("status kept: %+v", got.Status)
	}
}

func TestReflectPodDropsAffinityMetByTheVirtualNodeAlone(t *testing.T) {
	hub := hubPod()
	hub.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms = []corev1.NodeSelectorTerm{
		{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "zone", Operator: corev1.NodeSelectorOpIn, Values: []string{"b"}}}},
		{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: labelHostname, Operator: corev1.NodeSelectorOpIn, Values: []string{"member-1"}}}},
	}
	got := reflectPod(hub, "hub", "member-1", "shop", nil)
	if got.Spec.Affinity != nil {
		t.Errorf("affinity %+v: a term that selected the virtual node alone is met, so nothing is required", got.Spec.Affinity)
	}
}

func TestOriginLabelsOfLongNames(t *testing.T) {
	name := strings.Repeat("a", 100)
	hub := hubPod()
	hub.Name = name
	got := reflectPod(hub, "hub", "member-1", "shop", nil)
	if _, ok := got.Labels[LabelOriginName]; ok {
		t.Error("a name longer than a label value is in a label")
	}
	ns, n := originOf(got.Namespace, got.Name, got.Labels, got.Annotations)
	if ns != "shop" || n != name {
		t.Errorf("originOf = %s/%s", ns, n)
	}
}

func TestReflectSecretOfServiceAccountIsOpaque(t *testing.T) {
	s := reflectSecret(&corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "tok", Namespace: "shop", UID: "s1"},
		Type:       corev1.SecretTypeServiceAccountToken,
		Data:       map[string][]byte{"token": []byte("x")},
	}, "hub", "member-1", "shop")
	if s.Type != corev1.SecretTypeOpaque || string(s.Data["token"]) != "x" || s.Labels[LabelOriginUID] != "s1" {
		t.Errorf("reflected %+v", s)
	}
}

func TestReferences(t *testing.T) {
	pod := hubPod()
	pod.Spec.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "pull"}}
	pod.Spec.InitContainers = []corev1.Container{{Name: "init", EnvFrom: []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "init-env"}}}}}}
	pod.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "K", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "keys"}, Key: "k"}}}}
	got := references(pod)
	for _, want := range []objectKey{
		{kindConfigMap, "shop", "web-config"}, {kindSecret, "shop", "pull"}, {kindSecret, "shop", "init-env"}, {kindConfigMap, "shop", "keys"},
	} {
		if !slices.Contains(got, want) {
			t.Errorf("references %v lack %v", got, want)
		}
	}
}

func TestPodLoadCountsInitContainersAndOverhead(t *testing.T) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "n", Labels: map[string]string{"app": "x", LabelNode: "member-1"}},
		Spec: corev1.PodSpec{
			NodeName:       "n1",
			InitContainers: []corev1.Container{{Name: "i", Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2")}}}},
			Containers: []corev1.Container{
				{Name: "a", Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("1Gi")}}},
				{Name: "b", Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")}}},
			},
			Overhead: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("100Mi")},
		},
	}
	obj, err := podLoad(pod)
	if err != nil {
		t.Fatal(err)
	}
	got := obj.(*corev1.Pod)
	req := got.Spec.Containers[0].Resources.Requests
	if cpu := req[corev1.ResourceCPU]; cpu.MilliValue() != 2000 {
		t.Errorf("cpu %s, want the init container's 2", cpu.String())
	}
	if mem := req[corev1.ResourceMemory]; mem.Value() != 2*1024*1024*1024+100*1024*1024 {
		t.Errorf("memory %s, want 2Gi + 100Mi overhead", mem.String())
	}
	if got.Labels["app"] != "" || got.Labels[LabelNode] != "member-1" || got.Spec.NodeName != "n1" {
		t.Errorf("kept %v on %s", got.Labels, got.Spec.NodeName)
	}
}

func TestCodeOf(t *testing.T) {
	gr := schema.GroupResource{Resource: "pods"}
	for _, tc := range []struct {
		err  error
		want codes.Code
	}{
		{apierrors.NewNotFound(gr, "p"), codes.NotFound},
		{apierrors.NewForbidden(gr, "p", errors.New("exceeded quota: q, requested: pods=1")), codes.FailedPrecondition},
		{apierrors.NewForbidden(gr, "p", errors.New("denied by admission webhook")), codes.PermissionDenied},
		{apierrors.NewForbidden(gr, "p", errors.New("error looking up service account ns/default: not found")), codes.Unavailable},
		{apierrors.NewInvalid(schema.GroupKind{Kind: "Pod"}, "p", nil), codes.InvalidArgument},
		{apierrors.NewUnauthorized("no"), codes.Unauthenticated},
		{apierrors.NewServiceUnavailable("later"), codes.Unavailable},
		{errors.New("dial tcp 127.0.0.1:1: connect: connection refused"), codes.Unavailable},
		{context.DeadlineExceeded, codes.DeadlineExceeded},
	} {
		if got := codeOf(tc.err); got != tc.want {
			t.Errorf("codeOf(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

func TestSchedulable(t *testing.T) {
	ready := corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionTrue}
	notReady := corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionFalse}
	for _, tc := range []struct {
		node corev1.Node
		want bool
	}{
		{corev1.Node{Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{ready}}}, true},
		{corev1.Node{Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{notReady}}}, false},
		{corev1.Node{Spec: corev1.NodeSpec{Unschedulable: true}, Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{ready}}}, false},
		{corev1.Node{}, false},
	} {
		if got := schedulable(&tc.node); got != tc.want {
			t.Errorf("schedulable(%+v) = %v", tc.node, got)
		}
	}
}

func equalPods(a, b *corev1.Pod) bool {
	x, _ := a.Marshal()
	y, _ := b.Marshal()
	return string(x) == string(y)
}

func TestReflectServiceAndSlice(t *testing.T) {
	hubSvc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web", UID: "svc-uid"},
		Spec: corev1.ServiceSpec{
			Type: corev1.ServiceTypeNodePort, ClusterIP: "10.0.0.42", Selector: map[string]string{"app": "web"},
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080), NodePort: 30080}},
		},
	}
	svc := reflectService(hubSvc, "hub", "member-1", "fed")
	if svc.Namespace != "fed" || svc.Name != "web" || len(svc.Spec.Selector) != 0 || svc.Spec.ClusterIP != "" ||
		svc.Spec.Type != corev1.ServiceTypeClusterIP || svc.Spec.Ports[0].NodePort != 0 || svc.Spec.Ports[0].TargetPort.IntValue() != 8080 {
		t.Errorf("reflected Service %s/%s %+v: want a selector-less ClusterIP Service with the ports, no node port, no hub IP", svc.Namespace, svc.Name, svc.Spec)
	}
	if svc.Labels[LabelOriginKind] != "Service" || svc.Labels[LabelOriginCluster] != "hub" || svc.Labels[LabelNode] != "member-1" {
		t.Errorf("labels %v", svc.Labels)
	}
	hubSvc.Spec.ClusterIP = corev1.ClusterIPNone
	if got := reflectService(hubSvc, "hub", "member-1", "fed"); got.Spec.ClusterIP != corev1.ClusterIPNone {
		t.Errorf("a headless Service reflected with ClusterIP %q", got.Spec.ClusterIP)
	}

	node, zone := "fedlet-node", "a"
	hubSlice := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "shop", Name: "web-abcde", Labels: map[string]string{discoveryv1.LabelServiceName: "web", discoveryv1.LabelManagedBy: "endpointslice-controller.k8s.io"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.245.0.7"}, NodeName: &node, Zone: &zone, TargetRef: &corev1.ObjectReference{Kind: "Pod", Name: "web-1"}}},
		Ports:       []discoveryv1.EndpointPort{{Port: ptr.To[int32](8080)}},
	}
	s := reflectSlice(hubSlice, "web", "hub", "member-1", "fed")
	if s.Namespace != "fed" || s.Labels[discoveryv1.LabelServiceName] != "web" || s.Labels[discoveryv1.LabelManagedBy] != SliceManager {
		t.Errorf("reflected slice %s/%s labels %v", s.Namespace, s.Name, s.Labels)
	}
	if e := s.Endpoints[0]; e.Addresses[0] != "10.245.0.7" || e.NodeName != nil || e.Zone != nil || e.TargetRef != nil {
		t.Errorf("reflected endpoint %+v: want the address without the hub's node, zone and pod", e)
	}
	if errs := validation.IsValidLabelValue(SliceManager); len(errs) > 0 {
		t.Errorf("SliceManager %q is not a label value: %v", SliceManager, errs)
	}
}
