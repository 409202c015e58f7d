package kubernetes

import (
	"maps"
	"net"
	"slices"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// AnnotationProjectedVolume marks a Secret the agent hands over with a
// pod: it holds the files of the pod's projected volume the value names
// (the hub's service-account token for the pod, the hub's CA, the
// namespace).
const AnnotationProjectedVolume = "fedlet.io/projected-volume"

// reflectPod is the member pod that runs hub, a pod bound to the virtual
// node node: the same name, in namespace, with the origin labels beside the
// hub's labels and the hub's annotations. What only means something in the
// hub is taken out: the node binding and whatever selects or tolerates the
// virtual node, the owners (the member's garbage collector would delete a
// pod whose owner it cannot find), and the fields the member's admission
// computes itself (priority, overhead). The hub's service account does not
// exist in the member: its token volume becomes a Secret volume of the
// Secret the agent handed over for it (tokenSecrets, by volume name), so
// the pod keeps its hub identity; without one it is dropped.
func reflectPod(hub *corev1.Pod, origin, node, namespace string, tokenSecrets map[string]string) *corev1.Pod {
	labels := maps.Clone(hub.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	maps.Copy(labels, originLabels(origin, node, hub.Namespace, hub.Name, string(hub.UID)))
	annotations := maps.Clone(hub.Annotations)
	if annotations == nil {
		annotations = map[string]string{}
	}
	maps.Copy(annotations, originAnnotations(hub.Namespace, hub.Name))

	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:        hub.Name,
			Namespace:   namespace,
			Labels:      labels,
			Annotations: annotations,
		},
		Spec: *hub.Spec.DeepCopy(),
	}
	spec := &pod.Spec
	spec.NodeName = ""
	spec.NodeSelector = dropNodeSelector(spec.NodeSelector, node)
	spec.Affinity = dropNodeAffinity(spec.Affinity, node)
	spec.Tolerations = slices.DeleteFunc(spec.Tolerations, func(t corev1.Toleration) bool { return t.Key == TaintProvider })
	if len(spec.Tolerations) == 0 {
		spec.Tolerations = nil
	}
	noToken := false
	spec.AutomountServiceAccountToken = &noToken
	spec.ServiceAccountName = ""
	spec.DeprecatedServiceAccount = ""
	replaceServiceAccountVolumes(spec, tokenSecrets)
	// Ephemeral containers are added through their own subresource, never
	// at creation.
	spec.EphemeralContainers = nil
	// The member's Priority and RuntimeClass admission compute these from
	// the class names, and refuse a pod that brings its own.
	spec.Priority = nil
	spec.PreemptionPolicy = nil
	spec.Overhead = nil
	// Readiness gates are conditions the hub's controllers set; nothing in
	// the member would ever set them.
	spec.ReadinessGates = nil
	return pod
}

// dropNodeSelector removes the terms that select the virtual node itself.
func dropNodeSelector(sel map[string]string, node string) map[string]string {
	if sel == nil {
		return nil
	}
	out := map[string]string{}
	for k, v := range sel {
		if targetsVirtualNode(k, []string{v}, node) {
			continue
		}
		out[k] = v
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// targetsVirtualNode says whether a requirement on label key with values
// is about the virtual node: its member label, or its hostname.
func targetsVirtualNode(key string, values []string, node string) bool {
	switch key {
	case LabelMember:
		return true
	case labelHostname:
		return slices.Contains(values, node)
	}
	return false
}

// dropNodeAffinity removes the node affinity requirements about the
// virtual node. A required term left empty matched the virtual node alone;
// as terms are ORed, the whole requirement is then met and dropped.
func dropNodeAffinity(a *corev1.Affinity, node string) *corev1.Affinity {
	if a == nil || a.NodeAffinity == nil {
		return a
	}
	na := a.NodeAffinity
	if req := na.RequiredDuringSchedulingIgnoredDuringExecution; req != nil {
		var terms []corev1.NodeSelectorTerm
		met := false
		for _, t := range req.NodeSelectorTerms {
			kept, changed := dropTerm(t, node)
			if changed && empty(kept) {
				met = true
				break
			}
			terms = append(terms, kept)
		}
		if met || len(terms) == 0 {
			na.RequiredDuringSchedulingIgnoredDuringExecution = nil
		} else {
			req.NodeSelectorTerms = terms
		}
	}
	var preferred []corev1.PreferredSchedulingTerm
	for _, p := range na.PreferredDuringSchedulingIgnoredDuringExecution {
		kept, changed := dropTerm(p.Preference, node)
		if changed && empty(kept) {
			continue
		}
		p.Preference = kept
		preferred = append(preferred, p)
	}
	na.PreferredDuringSchedulingIgnoredDuringExecution = preferred
	if na.RequiredDuringSchedulingIgnoredDuringExecution == nil && len(preferred) == 0 {
		a.NodeAffinity = nil
	}
	if a.NodeAffinity == nil && a.PodAffinity == nil && a.PodAntiAffinity == nil {
		return nil
	}
	return a
}

// dropTerm removes a term's requirements about the virtual node: label
// expressions on its member label or hostname, and field requirements on
// its name.
func dropTerm(t corev1.NodeSelectorTerm, node string) (corev1.NodeSelectorTerm, bool) {
	changed := false
	var exprs []corev1.NodeSelectorRequirement
	for _, e := range t.MatchExpressions {
		// Any requirement on the member label is about virtual nodes; a
		// hostname one only when it asks for this node.
		if e.Key == LabelMember || e.Operator == corev1.NodeSelectorOpIn && targetsVirtualNode(e.Key, e.Values, node) {
			changed = true
			continue
		}
		exprs = append(exprs, e)
	}
	var fields []corev1.NodeSelectorRequirement
	for _, f := range t.MatchFields {
		if f.Key == "metadata.name" && f.Operator == corev1.NodeSelectorOpIn && slices.Contains(f.Values, node) {
			changed = true
			continue
		}
		fields = append(fields, f)
	}
	return corev1.NodeSelectorTerm{MatchExpressions: exprs, MatchFields: fields}, changed
}

func empty(t corev1.NodeSelectorTerm) bool {
	return len(t.MatchExpressions) == 0 && len(t.MatchFields) == 0
}

// replaceServiceAccountVolumes makes each of the hub's service-account
// token volumes a Secret volume of the Secret the agent handed over for it,
// and removes, with its mounts, one without: a projection of a token the
// member cannot make.
func replaceServiceAccountVolumes(spec *corev1.PodSpec, tokenSecrets map[string]string) {
	dropped := map[string]bool{}
	kept := spec.Volumes[:0]
	for _, v := range spec.Volumes {
		switch {
		case v.Projected == nil || !slices.ContainsFunc(v.Projected.Sources, func(s corev1.VolumeProjection) bool { return s.ServiceAccountToken != nil }):
			kept = append(kept, v)
		case tokenSecrets[v.Name] != "":
			v.VolumeSource = corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: tokenSecrets[v.Name], DefaultMode: v.Projected.DefaultMode}}
			kept = append(kept, v)
		default:
			dropped[v.Name] = true
		}
	}
	spec.Volumes = kept
	if len(dropped) == 0 {
		return
	}
	unmount := func(cs []corev1.Container) {
		for i := range cs {
			cs[i].VolumeMounts = slices.DeleteFunc(cs[i].VolumeMounts, func(m corev1.VolumeMount) bool { return dropped[m.Name] })
		}
	}
	unmount(spec.InitContainers)
	unmount(spec.Containers)
}

// reflectConfigMap is the member copy of a ConfigMap of the hub.
func reflectConfigMap(hub *corev1.ConfigMap, origin, node, namespace string) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		ObjectMeta: reflectedMeta(hub.ObjectMeta, origin, node, namespace),
		Data:       maps.Clone(hub.Data),
		BinaryData: maps.Clone(hub.BinaryData),
		Immutable:  hub.Immutable,
	}
}

// reflectSecret is the member copy of a Secret of the hub. A
// service-account token Secret becomes Opaque: the member's token
// controller would otherwise replace or delete it.
func reflectSecret(hub *corev1.Secret, origin, node, namespace string) *corev1.Secret {
	meta := reflectedMeta(hub.ObjectMeta, origin, node, namespace)
	typ := hub.Type
	if typ == corev1.SecretTypeServiceAccountToken {
		typ = corev1.SecretTypeOpaque
	}
	return &corev1.Secret{
		ObjectMeta: meta,
		Type:       typ,
		Data:       maps.Clone(hub.Data),
		Immutable:  hub.Immutable,
	}
}

// reflectedMeta is the metadata of a member copy: the same name, the
// origin labels over the hub's labels, and the origin annotations.
func reflectedMeta(hub metav1.ObjectMeta, origin, node, namespace string) metav1.ObjectMeta {
	labels := maps.Clone(hub.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	maps.Copy(labels, originLabels(origin, node, hub.Namespace, hub.Name, string(hub.UID)))
	return metav1.ObjectMeta{
		Name:        hub.Name,
		Namespace:   namespace,
		Labels:      labels,
		Annotations: originAnnotations(hub.Namespace, hub.Name),
	}
}

// pointAtHub makes in-cluster clients of the pod's containers talk to the
// hub, where their token is valid: KUBERNETES_SERVICE_HOST and _PORT name
// the hub's API server (apiServer, host:port), unless a container sets
// them itself.
func pointAtHub(spec *corev1.PodSpec, apiServer string) {
	host, port, _ := net.SplitHostPort(apiServer) // checked with the config
	set := func(cs []corev1.Container) {
		for i := range cs {
			if slices.ContainsFunc(cs[i].Env, func(e corev1.EnvVar) bool { return e.Name == "KUBERNETES_SERVICE_HOST" }) {
				continue
			}
			cs[i].Env = append(cs[i].Env,
				corev1.EnvVar{Name: "KUBERNETES_SERVICE_HOST", Value: host},
				corev1.EnvVar{Name: "KUBERNETES_SERVICE_PORT", Value: port})
		}
	}
	set(spec.InitContainers)
	set(spec.Containers)
}
