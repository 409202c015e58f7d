package podproxy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// reference names a ConfigMap or Secret of the pod's namespace that the pod
// refers to.
type reference struct {
	name string
	// optional holds when every reference to the object is optional: one
	// required reference makes the pod wait for it.
	optional bool
}

// rootCAConfigMap is the ConfigMap every cluster publishes in every
// namespace with its own CA, which pods' service-account volumes project.
// It is never handed over as itself: the member's own copy, under the same
// name, must not be overwritten; the hub's CA reaches a pod inside the
// Secret of its service-account volume (tokenSecrets).
const rootCAConfigMap = "kube-root-ca.crt"

// podReferences lists, by name and without repeats, the ConfigMaps and
// Secrets the pod refers to: its containers' env (valueFrom) and envFrom,
// its configMap, secret and projected volumes, and its image pull secrets
// (optional, as for the kubelet, which only warns about a missing one);
// never rootCAConfigMap.
func podReferences(pod *corev1.Pod) (configMaps, secrets []reference) {
	cms, ss := map[string]bool{}, map[string]bool{}
	add := func(set map[string]bool, name string, optional *bool) {
		if name == "" {
			return
		}
		opt := optional != nil && *optional
		if was, seen := set[name]; seen {
			opt = opt && was
		}
		set[name] = opt
	}
	yes := true
	for _, ctr := range allContainers(pod) {
		for _, from := range ctr.EnvFrom {
			if from.ConfigMapRef != nil {
				add(cms, from.ConfigMapRef.Name, from.ConfigMapRef.Optional)
			}
			if from.SecretRef != nil {
				add(ss, from.SecretRef.Name, from.SecretRef.Optional)
			}
		}
		for _, env := range ctr.Env {
			if env.ValueFrom == nil {
				continue
			}
			if ref := env.ValueFrom.ConfigMapKeyRef; ref != nil {
				add(cms, ref.Name, ref.Optional)
			}
			if ref := env.ValueFrom.SecretKeyRef; ref != nil {
				add(ss, ref.Name, ref.Optional)
			}
		}
	}
	for _, vol := range pod.Spec.Volumes {
		if src := vol.ConfigMap; src != nil {
			add(cms, src.Name, src.Optional)
		}
		if src := vol.Secret; src != nil {
			add(ss, src.SecretName, src.Optional)
		}
		if vol.Projected == nil {
			continue
		}
		for _, src := range vol.Projected.Sources {
			if src.ConfigMap != nil {
				add(cms, src.ConfigMap.Name, src.ConfigMap.Optional)
			}
			if src.Secret != nil {
				add(ss, src.Secret.Name, src.Secret.Optional)
			}
		}
	}
	for _, ref := range pod.Spec.ImagePullSecrets {
		add(ss, ref.Name, &yes)
	}
	delete(cms, rootCAConfigMap)
	return sorted(cms), sorted(ss)
}

func sorted(set map[string]bool) []reference {
	out := make([]reference, 0, len(set))
	for name, optional := range set {
		out = append(out, reference{name: name, optional: optional})
	}
	slices.SortFunc(out, func(a, b reference) int {
		if a.name < b.name {
			return -1
		}
		if a.name > b.name {
			return 1
		}
		return 0
	})
	return out
}

// allContainers lists the pod's init, app and ephemeral containers' common
// parts: everything that may read a ConfigMap or Secret.
func allContainers(pod *corev1.Pod) []corev1.Container {
	out := append(append([]corev1.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...)
	for _, e := range pod.Spec.EphemeralContainers {
		out = append(out, corev1.Container(e.EphemeralContainerCommon))
	}
	return out
}

// dependencies are the objects handed over with a pod, in name order.
type dependencies struct {
	configMaps []*corev1.ConfigMap
	secrets    []*corev1.Secret
}

// missingObjectError says which required object a pod waits for.
type missingObjectError struct{ err error }

func (e *missingObjectError) Error() string { return e.err.Error() }

// readDependencies reads the objects the pod refers to; a missing optional
// one is left out, a missing required one is a *missingObjectError naming
// it (`configmap "name" not found`).
func (c *Proxy) readDependencies(ctx context.Context, pod *corev1.Pod) (*dependencies, error) {
	cms, ss := podReferences(pod)
	deps := &dependencies{}
	for _, ref := range cms {
		cm, err := c.objects.ConfigMap(ctx, pod, ref.name)
		if err = checkRead(err, ref); err != nil {
			return nil, err
		}
		if cm != nil {
			deps.configMaps = append(deps.configMaps, cm)
		}
	}
	for _, ref := range ss {
		s, err := c.objects.Secret(ctx, pod, ref.name)
		if err = checkRead(err, ref); err != nil {
			return nil, err
		}
		if s != nil {
			deps.secrets = append(deps.secrets, s)
		}
	}
	tokens, refresh, err := c.tokenSecrets(ctx, pod)
	if err != nil {
		return nil, err
	}
	deps.secrets = append(deps.secrets, tokens...)
	if !refresh.IsZero() {
		c.ctrl.EnqueueAfter(pod.UID, max(time.Until(refresh), time.Second))
	}
	return deps, nil
}

// checkRead says whether a read's error stops the hand-over: a missing
// optional object does not.
func checkRead(err error, ref reference) error {
	switch {
	case err == nil:
		return nil
	case apierrors.IsNotFound(err) && ref.optional:
		return nil
	case apierrors.IsNotFound(err):
		return &missingObjectError{err: err}
	}
	return err
}

// encode turns the pod and its dependencies into the CreatePod request's
// Kubernetes protobuf, without server-side apply's field ownership.
func encode(pod *corev1.Pod, deps *dependencies) (podBytes []byte, cms, ss [][]byte, err error) {
	p := *pod
	p.ManagedFields = nil
	if podBytes, err = p.Marshal(); err != nil {
		return nil, nil, nil, fmt.Errorf("encode pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	for _, cm := range deps.configMaps {
		o := *cm // shared with the watch: copied, not modified
		o.ManagedFields = nil
		b, err := o.Marshal()
		if err != nil {
			return nil, nil, nil, fmt.Errorf("encode configmap %s/%s: %w", cm.Namespace, cm.Name, err)
		}
		cms = append(cms, b)
	}
	for _, s := range deps.secrets {
		o := *s
		o.ManagedFields = nil
		b, err := o.Marshal()
		if err != nil {
			return nil, nil, nil, fmt.Errorf("encode secret %s/%s: %w", s.Namespace, s.Name, err)
		}
		ss = append(ss, b)
	}
	return podBytes, cms, ss, nil
}

// fingerprint sums up what CreatePod hands over that may change while the
// pod runs: its labels, annotations and generation, and the version of
// each object it depends on. Values are never part of it in clear.
func fingerprint(pod *corev1.Pod, deps *dependencies) string {
	var objects []string
	for _, cm := range deps.configMaps {
		objects = append(objects, "configmap/"+cm.Name+"/"+string(cm.UID)+"/"+cm.ResourceVersion)
	}
	for _, s := range deps.secrets {
		objects = append(objects, "secret/"+s.Name+"/"+string(s.UID)+"/"+s.ResourceVersion)
	}
	data, _ := json.Marshal(struct {
		Generation  int64
		Labels      map[string]string
		Annotations map[string]string
		Objects     []string
	}{pod.Generation, pod.Labels, pod.Annotations, objects})
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}
