package kubernetes

import (
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Origin labels, on every object the plugin creates in a member. They are
// the plugin's only state: a restarted plugin finds its pods, ConfigMaps and
// Secrets again through them.
const (
	// LabelOriginCluster is the hub's name (Config.Origin).
	LabelOriginCluster = "fedlet.io/origin-cluster"
	// LabelOriginNamespace and LabelOriginName name the hub object. A name
	// too long for a label value is kept in the annotation of the same key
	// only.
	LabelOriginNamespace = "fedlet.io/origin-namespace"
	LabelOriginName      = "fedlet.io/origin-name"
	// LabelOriginUID is the hub object's UID: for a pod, the pod UID that
	// every runtime call names.
	LabelOriginUID = "fedlet.io/origin-uid"
	// LabelNode is the virtual node the object was created for.
	LabelNode = "fedlet.io/node"

	// LabelManagedBy marks the namespaces the plugin created.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	ManagedBy      = "fedlet"
)

// What the hub puts on a virtual node and the pods bound to it, which means
// nothing in a member.
const (
	// LabelMember is the label of a virtual node naming its member.
	LabelMember = "fedlet.io/member"
	// TaintProvider is the taint of a virtual node; pods that run there
	// tolerate it.
	TaintProvider = "virtual-kubelet.io/provider"
	// labelHostname is the well-known label of a node's name.
	labelHostname = "kubernetes.io/hostname"
)

// originLabels are the labels that tie a member object to its hub object.
// Namespaces and names too long for a label value are left out; see
// originAnnotations.
func originLabels(origin, node, namespace, name, uid string) map[string]string {
	l := map[string]string{
		LabelOriginCluster: origin,
		LabelNode:          node,
		LabelOriginUID:     uid,
	}
	if isLabelValue(namespace) {
		l[LabelOriginNamespace] = namespace
	}
	if isLabelValue(name) {
		l[LabelOriginName] = name
	}
	return l
}

// originAnnotations keep the hub object's namespace and name whatever their
// length.
func originAnnotations(namespace, name string) map[string]string {
	return map[string]string{
		LabelOriginNamespace: namespace,
		LabelOriginName:      name,
	}
}

func isLabelValue(s string) bool { return len(validation.IsValidLabelValue(s)) == 0 }

// nodeSelector selects the member objects of one virtual node of this hub.
func nodeSelector(origin, node string) labels.Selector {
	return labels.SelectorFromSet(labels.Set{LabelOriginCluster: origin, LabelNode: node})
}

// podSelector selects the member pod of one hub pod.
func podSelector(origin, node, uid string) labels.Selector {
	return labels.SelectorFromSet(labels.Set{LabelOriginCluster: origin, LabelNode: node, LabelOriginUID: uid})
}

// originOf reads the hub namespace and name a member object stands for:
// from its annotations, else its labels, else its own.
func originOf(objNamespace, objName string, lbls, annotations map[string]string) (namespace, name string) {
	namespace, name = annotations[LabelOriginNamespace], annotations[LabelOriginName]
	if namespace == "" {
		namespace = lbls[LabelOriginNamespace]
	}
	if name == "" {
		name = lbls[LabelOriginName]
	}
	if namespace == "" {
		namespace = objNamespace
	}
	if name == "" {
		name = objName
	}
	return namespace, name
}
