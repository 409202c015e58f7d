package pod

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/fedlet/fedlet/core/podcontroller"
	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// specBuilder translates what the pod asks for into the runtime protocol:
// a container's spec with its environment (ConfigMaps and Secrets from
// their watches, the Services, the downward API) and mounts, and the pod's
// DNS (dns.go). It is the envSource of resolveEnv.
type specBuilder struct {
	objects *podcontroller.Objects
	// serviceInformer holds the cluster's Services: one informer of the
	// agent's, shared by every node.
	serviceInformer cache.SharedIndexInformer
	nodeInfo        *podcontroller.NodeInfo
	network         *podNetwork // nil without a network plugin
	volumes         *podVolumes

	clusterDNS    []string
	clusterDomain string
}

// build resolves the container's environment and translates it into the
// runtime protocol.
func (b *specBuilder) build(ctx context.Context, pod *corev1.Pod, ctr *corev1.Container) (*runtimev1.ContainerSpec, error) {
	env, err := resolveEnv(ctx, pod, ctr, b)
	if err != nil {
		return nil, err
	}
	spec, err := containerSpec(pod, ctr, env)
	if err != nil || !b.volumes.enabled() {
		return spec, err
	}
	if spec.Mounts, err = b.volumes.mounts(pod, ctr); err != nil {
		return nil, err
	}
	return spec, nil
}

func (b *specBuilder) configMap(ctx context.Context, pod *corev1.Pod, name string) (*corev1.ConfigMap, error) {
	return b.objects.ConfigMap(ctx, pod, name)
}

func (b *specBuilder) secret(ctx context.Context, pod *corev1.Pod, name string) (*corev1.Secret, error) {
	return b.objects.Secret(ctx, pod, name)
}

func (b *specBuilder) nodeIP() string { return b.nodeInfo.Address(context.Background()) }

func (b *specBuilder) podIPs(pod *corev1.Pod) []string { return b.network.podIPs(pod.UID) }

func (b *specBuilder) nodeAllocatable() corev1.ResourceList {
	return b.nodeInfo.Allocatable(context.Background())
}

// services lists the Services of namespace.
func (b *specBuilder) services(namespace string) []*corev1.Service {
	objs, err := b.serviceInformer.GetIndexer().ByIndex(cache.NamespaceIndex, namespace)
	if err != nil {
		return nil
	}
	out := make([]*corev1.Service, 0, len(objs))
	for _, obj := range objs {
		out = append(out, obj.(*corev1.Service))
	}
	return out
}
