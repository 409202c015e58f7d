package podproxy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/fedlet/fedlet/core/volume"
)

// AnnotationProjectedVolume marks a Secret the agent makes and hands over
// with a pod: it holds the files of the pod's projected volume named by
// the value (the service-account token, the CA, the namespace), for a
// backend that cannot request the hub's tokens itself.
const AnnotationProjectedVolume = "fedlet.io/projected-volume"

// tokenSecrets are the pod's projected volumes that hold a service-account
// token, each as a Secret of its files, with the token requested for the
// pod; and when the first of them is due for a refresh.
func (c *Proxy) tokenSecrets(ctx context.Context, pod *corev1.Pod) ([]*corev1.Secret, time.Time, error) {
	var out []*corev1.Secret
	var refresh time.Time
	for _, v := range pod.Spec.Volumes {
		if !hasToken(v) {
			continue
		}
		payload, at, err := volume.Build(ctx, pod, v, c.objects, c.tokens, nil)
		var missing *volume.MissingError
		if errors.As(err, &missing) {
			return nil, time.Time{}, &missingObjectError{err: missing}
		}
		if err != nil {
			return nil, time.Time{}, err
		}
		s, ok := tokenSecret(pod, v.Name, payload)
		if !ok {
			c.log.Warn("a projected volume's file paths cannot be Secret keys: the pod runs without it", "pod", pod.Namespace+"/"+pod.Name, "volume", v.Name)
			continue
		}
		out = append(out, s)
		if refresh.IsZero() || at.Before(refresh) {
			refresh = at
		}
	}
	return out, refresh, nil
}

func hasToken(v corev1.Volume) bool {
	if v.Projected == nil {
		return false
	}
	for _, s := range v.Projected.Sources {
		if s.ServiceAccountToken != nil {
			return true
		}
	}
	return false
}

// tokenSecret is the Secret of a projected volume's files, named after the
// pod and volume (a hash: both names are long). Its resource version is a
// hash of its content, so a refreshed token is handed over again; the
// token itself appears nowhere else.
func tokenSecret(pod *corev1.Pod, volumeName string, payload volume.Payload) (*corev1.Secret, bool) {
	data := map[string][]byte{}
	content := sha256.New()
	for path, f := range payload {
		if len(validation.IsConfigMapKey(path)) > 0 {
			return nil, false
		}
		data[path] = f.Data
		content.Write([]byte(path))
		content.Write(f.Data)
	}
	name := sha256.Sum256([]byte(string(pod.UID) + "/" + volumeName))
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name:            "fedlet-sa-" + hex.EncodeToString(name[:8]),
			Namespace:       pod.Namespace,
			UID:             pod.UID,
			ResourceVersion: hex.EncodeToString(content.Sum(nil)[:8]),
			Annotations:     map[string]string{AnnotationProjectedVolume: volumeName},
		},
		Type: corev1.SecretTypeOpaque,
		Data: data,
	}, true
}
