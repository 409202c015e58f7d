package pod

import (
	"context"
	"log/slog"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// Objects serves the ConfigMaps and Secrets that the pods of one node refer
// to, one watch per object, exactly as this package's controller reads them
// for containers' environments; core/podproxy uses it to hand them to
// backends that run whole pods.
type Objects struct{ o *podObjects }

// NewObjects returns the objects of a node's pods. changed is called with
// the UID of every pod that asked for an object each time that object
// changes, appears or goes. Run lets its watches start.
func NewObjects(client kubernetes.Interface, changed func(types.UID), log *slog.Logger) *Objects {
	return &Objects{o: newPodObjects(client, changed, log)}
}

// Run lets watches start, bounded by ctx, and returns when ctx has ended
// and every watch has stopped.
func (o *Objects) Run(ctx context.Context) { o.o.run(ctx) }

// ConfigMap returns the pod's ConfigMap called name, or a NotFound error
// naming it as the kubelet does. The object is shared: never modify it.
func (o *Objects) ConfigMap(ctx context.Context, pod *corev1.Pod, name string) (*corev1.ConfigMap, error) {
	return o.o.configMap(ctx, pod, name)
}

// Secret returns the pod's Secret called name, or a NotFound error naming
// it. The object is shared: never modify it.
func (o *Objects) Secret(ctx context.Context, pod *corev1.Pod, name string) (*corev1.Secret, error) {
	return o.o.secret(ctx, pod, name)
}

// Release forgets what the pod referred to, and stops the watches no other
// pod needs.
func (o *Objects) Release(uid types.UID) { o.o.release(uid) }
