package volume

import (
	"fmt"
	"os"

	corev1 "k8s.io/api/core/v1"

	"github.com/fedlet/fedlet/core/downward"
)

// DefaultMode is the mode of a volume's files when the pod names none.
const DefaultMode os.FileMode = 0o644

func modeOf(itemMode, defaultMode *int32) os.FileMode {
	switch {
	case itemMode != nil:
		return os.FileMode(*itemMode)
	case defaultMode != nil:
		return os.FileMode(*defaultMode)
	}
	return DefaultMode
}

// FromData is the payload of a Secret's or a ConfigMap's data: every key,
// or only the items, at their paths. A missing key of the items is an
// error unless optional.
func FromData(data map[string][]byte, items []corev1.KeyToPath, defaultMode *int32, optional bool, what string) (Payload, error) {
	p := Payload{}
	if len(items) == 0 {
		for k, v := range data {
			p[k] = File{Data: v, Mode: modeOf(nil, defaultMode)}
		}
		return p, nil
	}
	for _, it := range items {
		v, ok := data[it.Key]
		if !ok {
			if optional {
				continue
			}
			return nil, fmt.Errorf("%s has no key %q", what, it.Key)
		}
		p[it.Path] = File{Data: v, Mode: modeOf(it.Mode, defaultMode)}
	}
	return p, nil
}

// SecretData is a Secret's data as FromData takes it.
func SecretData(s *corev1.Secret) map[string][]byte {
	out := make(map[string][]byte, len(s.Data)+len(s.StringData))
	for k, v := range s.Data {
		out[k] = v
	}
	for k, v := range s.StringData {
		out[k] = []byte(v)
	}
	return out
}

// ConfigMapData is a ConfigMap's data and binary data as FromData takes
// them.
func ConfigMapData(cm *corev1.ConfigMap) map[string][]byte {
	out := make(map[string][]byte, len(cm.Data)+len(cm.BinaryData))
	for k, v := range cm.Data {
		out[k] = []byte(v)
	}
	for k, v := range cm.BinaryData {
		out[k] = v
	}
	return out
}

// FromDownwardAPI is the payload of downward API items: the pod's
// metadata, and its containers' resources (a limit not set is the node's
// allocatable amount).
func FromDownwardAPI(pod *corev1.Pod, items []corev1.DownwardAPIVolumeFile, defaultMode *int32, allocatable corev1.ResourceList) (Payload, error) {
	p := Payload{}
	for _, it := range items {
		var value string
		switch {
		case it.FieldRef != nil:
			v, ok := downward.Metadata(pod, it.FieldRef.FieldPath)
			if !ok {
				return nil, fmt.Errorf("downward API file %s: field %q is not one a volume can hold", it.Path, it.FieldRef.FieldPath)
			}
			value = v
		case it.ResourceFieldRef != nil:
			v, err := downward.Resource(pod, nil, it.ResourceFieldRef, allocatable)
			if err != nil {
				return nil, fmt.Errorf("downward API file %s: %w", it.Path, err)
			}
			value = v
		default:
			return nil, fmt.Errorf("downward API file %s: neither fieldRef nor resourceFieldRef", it.Path)
		}
		p[it.Path] = File{Data: []byte(value), Mode: modeOf(it.Mode, defaultMode)}
	}
	return p, nil
}

// Merge adds the files of more to p; a path given twice is an error.
func (p Payload) Merge(more Payload) error {
	for path, f := range more {
		if _, dup := p[path]; dup {
			return fmt.Errorf("two sources write %s", path)
		}
		p[path] = f
	}
	return nil
}
