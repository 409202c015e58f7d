package volume

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// DefaultTokenExpiration is a projected token's life when the pod names
// none (the API server's admission sets 3607 s).
const DefaultTokenExpiration = 3607 * time.Second

// maxTokenAge is when a token is refreshed at the latest, as the kubelet.
const maxTokenAge = 24 * time.Hour

// Tokens requests the service-account tokens of pods, bound to each pod,
// and keeps each until it is due for a refresh: after 80% of its life, or
// a day. A token is never logged.
type Tokens struct {
	client kubernetes.Interface

	mu    sync.Mutex
	byKey map[string]token
}

type token struct {
	value     string
	refreshAt time.Time
}

// NewTokens returns a Tokens that requests tokens through client.
func NewTokens(client kubernetes.Interface) *Tokens {
	return &Tokens{client: client, byKey: map[string]token{}}
}

// Get returns the token of pod's service account for the projection, and
// when it is due for a refresh.
func (t *Tokens) Get(ctx context.Context, pod *corev1.Pod, src *corev1.ServiceAccountTokenProjection) (string, time.Time, error) {
	expiration := DefaultTokenExpiration
	if src.ExpirationSeconds != nil {
		expiration = time.Duration(*src.ExpirationSeconds) * time.Second
	}
	key := fmt.Sprintf("%s/%s/%d", pod.UID, src.Audience, expiration/time.Second)
	t.mu.Lock()
	cached, ok := t.byKey[key]
	t.mu.Unlock()
	if ok && time.Now().Before(cached.refreshAt) {
		return cached.value, cached.refreshAt, nil
	}
	seconds := int64(expiration / time.Second)
	req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		ExpirationSeconds: &seconds,
		BoundObjectRef:    &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
	}}
	if src.Audience != "" {
		req.Spec.Audiences = []string{src.Audience}
	}
	sa := pod.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	issued := time.Now()
	resp, err := t.client.CoreV1().ServiceAccounts(pod.Namespace).CreateToken(ctx, sa, req, metav1.CreateOptions{})
	if err != nil {
		return "", time.Time{}, fmt.Errorf("request a token of service account %s/%s: %w", pod.Namespace, sa, err)
	}
	life := resp.Status.ExpirationTimestamp.Sub(issued)
	refreshAt := issued.Add(min(life*8/10, maxTokenAge))
	t.mu.Lock()
	t.byKey[key] = token{value: resp.Status.Token, refreshAt: refreshAt}
	t.mu.Unlock()
	return resp.Status.Token, refreshAt, nil
}

// Forget drops the tokens of the pod.
func (t *Tokens) Forget(uid types.UID) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for key := range t.byKey {
		if strings.HasPrefix(key, string(uid)+"/") {
			delete(t.byKey, key)
		}
	}
}
