package volume

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// Objects reads the ConfigMaps and Secrets volumes refer to; a missing one
// is a NotFound error.
type Objects interface {
	ConfigMap(ctx context.Context, pod *corev1.Pod, name string) (*corev1.ConfigMap, error)
	Secret(ctx context.Context, pod *corev1.Pod, name string) (*corev1.Secret, error)
}

// Supported says whether the node makes volume v itself: Secrets,
// ConfigMaps, the downward API, projections of those and of
// service-account tokens, and emptyDirs.
func Supported(v corev1.Volume) bool {
	switch {
	case v.Secret != nil, v.ConfigMap != nil, v.DownwardAPI != nil, v.EmptyDir != nil:
		return true
	case v.Projected != nil:
		for _, s := range v.Projected.Sources {
			if s.ClusterTrustBundle != nil || s.PodCertificate != nil {
				return false
			}
		}
		return true
	}
	return false
}

// ReadOnly says whether the volume's content is the node's (mounted read
// only whatever the pod asks).
func ReadOnly(v corev1.Volume) bool {
	return v.EmptyDir == nil
}

// MissingError is a volume waiting for an object that does not exist.
type MissingError struct {
	Volume string
	Err    error
}

func (e *MissingError) Error() string {
	return fmt.Sprintf("MountVolume.SetUp failed for volume %q: %v", e.Volume, e.Err)
}

func (e *MissingError) Unwrap() error { return e.Err }

// Build returns the files of the pod's volume v (nil for an emptyDir) and
// when they are due for a refresh (a token's; zero when never). allocatable
// is the node's, for resource limits the containers do not set.
func Build(ctx context.Context, pod *corev1.Pod, v corev1.Volume, objects Objects, tokens *Tokens, allocatable corev1.ResourceList) (Payload, time.Time, error) {
	missing := func(err error) error {
		if apierrors.IsNotFound(err) {
			return &MissingError{Volume: v.Name, Err: err}
		}
		return fmt.Errorf("volume %q: %w", v.Name, err)
	}
	switch {
	case v.EmptyDir != nil:
		return nil, time.Time{}, nil
	case v.Secret != nil:
		p, err := secretPayload(ctx, pod, objects, v.Secret.SecretName, v.Secret.Items, v.Secret.DefaultMode, v.Secret.Optional)
		if err != nil {
			return nil, time.Time{}, missing(err)
		}
		return p, time.Time{}, nil
	case v.ConfigMap != nil:
		p, err := configMapPayload(ctx, pod, objects, v.ConfigMap.Name, v.ConfigMap.Items, v.ConfigMap.DefaultMode, v.ConfigMap.Optional)
		if err != nil {
			return nil, time.Time{}, missing(err)
		}
		return p, time.Time{}, nil
	case v.DownwardAPI != nil:
		p, err := FromDownwardAPI(pod, v.DownwardAPI.Items, v.DownwardAPI.DefaultMode, allocatable)
		return p, time.Time{}, err
	case v.Projected != nil:
		return projectedPayload(ctx, pod, v, objects, tokens, allocatable, missing)
	}
	return nil, time.Time{}, fmt.Errorf("volume %q: not a kind this node makes", v.Name)
}

func projectedPayload(ctx context.Context, pod *corev1.Pod, v corev1.Volume, objects Objects, tokens *Tokens, allocatable corev1.ResourceList, missing func(error) error) (Payload, time.Time, error) {
	all := Payload{}
	var refresh time.Time
	mode := v.Projected.DefaultMode
	for _, s := range v.Projected.Sources {
		var p Payload
		var err error
		switch {
		case s.Secret != nil:
			p, err = secretPayload(ctx, pod, objects, s.Secret.Name, s.Secret.Items, mode, s.Secret.Optional)
		case s.ConfigMap != nil:
			p, err = configMapPayload(ctx, pod, objects, s.ConfigMap.Name, s.ConfigMap.Items, mode, s.ConfigMap.Optional)
		case s.DownwardAPI != nil:
			p, err = FromDownwardAPI(pod, s.DownwardAPI.Items, mode, allocatable)
		case s.ServiceAccountToken != nil:
			var value string
			var at time.Time
			value, at, err = tokens.Get(ctx, pod, s.ServiceAccountToken)
			p = Payload{s.ServiceAccountToken.Path: {Data: []byte(value), Mode: modeOf(nil, mode)}}
			if refresh.IsZero() || at.Before(refresh) {
				refresh = at
			}
		}
		if err != nil {
			return nil, time.Time{}, missing(err)
		}
		if err := all.Merge(p); err != nil {
			return nil, time.Time{}, fmt.Errorf("volume %q: %w", v.Name, err)
		}
	}
	return all, refresh, nil
}

func secretPayload(ctx context.Context, pod *corev1.Pod, objects Objects, name string, items []corev1.KeyToPath, mode *int32, optional *bool) (Payload, error) {
	s, err := objects.Secret(ctx, pod, name)
	if apierrors.IsNotFound(err) && optional != nil && *optional {
		return Payload{}, nil
	}
	if err != nil {
		return nil, err
	}
	return FromData(SecretData(s), items, mode, optional != nil && *optional, fmt.Sprintf("secret %q", name))
}

func configMapPayload(ctx context.Context, pod *corev1.Pod, objects Objects, name string, items []corev1.KeyToPath, mode *int32, optional *bool) (Payload, error) {
	cm, err := objects.ConfigMap(ctx, pod, name)
	if apierrors.IsNotFound(err) && optional != nil && *optional {
		return Payload{}, nil
	}
	if err != nil {
		return nil, err
	}
	return FromData(ConfigMapData(cm), items, mode, optional != nil && *optional, fmt.Sprintf("configmap %q", name))
}
