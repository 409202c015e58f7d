package podcontroller

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
)

// NodeInformers is the informer factory of one node's pods: those whose
// spec.nodeName is node. The controller of the node starts and stops it.
func NodeInformers(client kubernetes.Interface, node string) informers.SharedInformerFactory {
	return informers.NewSharedInformerFactoryWithOptions(client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", node).String()
		}),
		informers.WithTransform(DropManagedFields))
}

// ClusterInformers is the agent's one informer factory of cluster-wide
// objects, shared by every node's controller. The Services informer (for
// containers' environments) is asked for here, so that the agent's one
// Start starts it: an informer asked for after Start would not run.
func ClusterInformers(client kubernetes.Interface) informers.SharedInformerFactory {
	f := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithTransform(DropManagedFields))
	f.Core().V1().Services().Informer()
	return f
}

// DropManagedFields is an informer transform that leaves out of a cache
// what the agent never reads and never writes back (statuses are merge
// patches): server-side apply's field ownership, a third of a small pod's
// size.
func DropManagedFields(obj any) (any, error) {
	if acc, ok := obj.(metav1.ObjectMetaAccessor); ok {
		acc.GetObjectMeta().SetManagedFields(nil)
	}
	return obj, nil
}
