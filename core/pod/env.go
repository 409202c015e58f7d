package pod

import (
	"context"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/fedlet/fedlet/core/downward"
	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// envSource is what a container's environment is read from beside its pod:
// the ConfigMaps and Secrets of the pod's namespace, and the node.
type envSource interface {
	configMap(ctx context.Context, pod *corev1.Pod, name string) (*corev1.ConfigMap, error)
	secret(ctx context.Context, pod *corev1.Pod, name string) (*corev1.Secret, error)
	// nodeIP is the node's InternalIP; empty when not known yet.
	nodeIP() string
	// podIPs are the pod's addresses from its network attachment, which
	// precedes its containers and so its status; none without one.
	podIPs(pod *corev1.Pod) []string
	// nodeAllocatable stands in for the limits a container does not set.
	nodeAllocatable() corev1.ResourceList
	// services lists a namespace's Services, for their environment.
	services(namespace string) []*corev1.Service
}

// resolveEnv computes a container's environment as the kubelet does:
// the Services' variables first (serviceEnv), then envFrom, in order (a
// prefix before each key), then env, each overriding what came before. A plain value has its $(VAR) references expanded against
// the variables defined before it; a valueFrom is read from the pod, the
// node, a ConfigMap or a Secret. A missing object or key that is not
// optional is an error naming it (and never a value); an optional one
// leaves the variable out.
func resolveEnv(ctx context.Context, pod *corev1.Pod, ctr *corev1.Container, src envSource) ([]*runtimev1.KeyValue, error) {
	r := &envResolver{ctx: ctx, pod: pod, ctr: ctr, src: src, values: map[string]string{},
		configMaps: map[string]*corev1.ConfigMap{}, secrets: map[string]*corev1.Secret{}}
	for _, kv := range serviceEnv(pod, src.services) {
		r.set(kv.Key, kv.Value)
	}
	for _, from := range ctr.EnvFrom {
		if err := r.addFrom(from); err != nil {
			return nil, err
		}
	}
	for _, e := range ctr.Env {
		value := expand(e.Value, r.values)
		if e.Value == "" && e.ValueFrom != nil {
			var ok bool
			var err error
			value, ok, err = r.valueFrom(e.ValueFrom)
			if err != nil {
				return nil, err
			}
			if !ok {
				continue // optional, and missing
			}
		}
		r.set(e.Name, value)
	}
	env := make([]*runtimev1.KeyValue, 0, len(r.order))
	for _, name := range r.order {
		env = append(env, &runtimev1.KeyValue{Key: name, Value: r.values[name]})
	}
	return env, nil
}

type envResolver struct {
	ctx        context.Context
	pod        *corev1.Pod
	ctr        *corev1.Container
	src        envSource
	order      []string
	values     map[string]string
	configMaps map[string]*corev1.ConfigMap
	secrets    map[string]*corev1.Secret
}

// set defines a variable; a redefined one keeps its first place.
func (r *envResolver) set(name, value string) {
	if _, ok := r.values[name]; !ok {
		r.order = append(r.order, name)
	}
	r.values[name] = value
}

func (r *envResolver) addFrom(from corev1.EnvFromSource) error {
	switch {
	case from.ConfigMapRef != nil:
		cm, err := r.configMap(from.ConfigMapRef.Name, isOptional(from.ConfigMapRef.Optional))
		if err != nil || cm == nil {
			return err
		}
		for _, k := range sortedKeys(cm.Data) {
			r.set(from.Prefix+k, cm.Data[k])
		}
	case from.SecretRef != nil:
		s, err := r.secret(from.SecretRef.Name, isOptional(from.SecretRef.Optional))
		if err != nil || s == nil {
			return err
		}
		for _, k := range sortedKeys(s.Data) {
			r.set(from.Prefix+k, string(s.Data[k]))
		}
	}
	return nil
}

// valueFrom reads one variable's source; ok is false when an optional
// source is missing.
func (r *envResolver) valueFrom(from *corev1.EnvVarSource) (value string, ok bool, err error) {
	switch {
	case from.FieldRef != nil:
		v, err := fieldRefValue(r.pod, from.FieldRef.FieldPath, r.src)
		return v, err == nil, err
	case from.ResourceFieldRef != nil:
		v, err := downward.Resource(r.pod, r.ctr, from.ResourceFieldRef, r.src.nodeAllocatable())
		return v, err == nil, err
	case from.ConfigMapKeyRef != nil:
		ref := from.ConfigMapKeyRef
		optional := isOptional(ref.Optional)
		cm, err := r.configMap(ref.Name, optional)
		if err != nil || cm == nil {
			return "", false, err
		}
		if v, ok := cm.Data[ref.Key]; ok {
			return v, true, nil
		}
		if optional {
			return "", false, nil
		}
		return "", false, fmt.Errorf("couldn't find key %s in ConfigMap %s/%s", ref.Key, r.pod.Namespace, ref.Name)
	case from.SecretKeyRef != nil:
		ref := from.SecretKeyRef
		optional := isOptional(ref.Optional)
		s, err := r.secret(ref.Name, optional)
		if err != nil || s == nil {
			return "", false, err
		}
		if v, ok := s.Data[ref.Key]; ok {
			return string(v), true, nil
		}
		if optional {
			return "", false, nil
		}
		return "", false, fmt.Errorf("couldn't find key %s in Secret %s/%s", ref.Key, r.pod.Namespace, ref.Name)
	}
	return "", false, fmt.Errorf("env var source not supported by this node: %s", unsupportedSource(from))
}

// configMap reads a ConfigMap once per container; nil when it is missing
// and optional.
func (r *envResolver) configMap(name string, optional bool) (*corev1.ConfigMap, error) {
	if cm, ok := r.configMaps[name]; ok {
		return cm, nil
	}
	cm, err := r.src.configMap(r.ctx, r.pod, name)
	if apierrors.IsNotFound(err) && optional {
		cm, err = nil, nil
	}
	if err != nil {
		return nil, err
	}
	r.configMaps[name] = cm
	return cm, nil
}

func (r *envResolver) secret(name string, optional bool) (*corev1.Secret, error) {
	if s, ok := r.secrets[name]; ok {
		return s, nil
	}
	s, err := r.src.secret(r.ctx, r.pod, name)
	if apierrors.IsNotFound(err) && optional {
		s, err = nil, nil
	}
	if err != nil {
		return nil, err
	}
	r.secrets[name] = s
	return s, nil
}

func unsupportedSource(from *corev1.EnvVarSource) string {
	if from.FileKeyRef != nil {
		return "fileKeyRef"
	}
	return "unknown"
}

// fieldRefValue is the value of a downward-API field of the pod.
func fieldRefValue(pod *corev1.Pod, path string, src envSource) (string, error) {
	if v, ok := downward.Metadata(pod, path); ok {
		return v, nil
	}
	switch path {
	case "spec.nodeName":
		return pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.hostIP", "status.hostIPs":
		return src.nodeIP(), nil
	case "status.podIP":
		if pod.Spec.HostNetwork {
			return src.nodeIP(), nil
		}
		if ips := src.podIPs(pod); len(ips) > 0 {
			return ips[0], nil
		}
		return pod.Status.PodIP, nil
	case "status.podIPs":
		if pod.Spec.HostNetwork {
			return src.nodeIP(), nil
		}
		if ips := src.podIPs(pod); len(ips) > 0 {
			return strings.Join(ips, ","), nil
		}
		return pod.Status.PodIP, nil
	}
	if key, ok := subscript(path, "metadata.labels"); ok {
		return pod.Labels[key], nil
	}
	if key, ok := subscript(path, "metadata.annotations"); ok {
		return pod.Annotations[key], nil
	}
	return "", fmt.Errorf("unsupported fieldPath: %s", path)
}

// subscript returns k of "prefix['k']".
func subscript(path, prefix string) (string, bool) {
	rest, ok := strings.CutPrefix(path, prefix+"['")
	if !ok || !strings.HasSuffix(rest, "']") {
		return "", false
	}
	return strings.TrimSuffix(rest, "']"), true
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func isOptional(b *bool) bool { return b != nil && *b }
