package kubernetes

import (
	"context"
	"maps"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"
)

// defaultServiceAccountWait bounds the wait, after making a namespace, for
// the member's controller to make its default ServiceAccount: the member's
// admission refuses pods until it exists.
const defaultServiceAccountWait = 30 * time.Second

// Kinds of the objects a pod depends on, for objectKey.
const (
	kindConfigMap = "ConfigMap"
	kindSecret    = "Secret"
)

// objectKey names a ConfigMap or Secret in a member.
type objectKey struct {
	kind, namespace, name string
}

// reflectedObjects remembers, in memory, the member namespaces known to
// exist (to spare a request per pod) and which ConfigMaps and Secrets a
// CreatePod is writing or has just written, which the garbage collector
// leaves alone: a collection that began before such a CreatePod ended may
// have listed the pods before its pod existed.
type reflectedObjects struct {
	mu         sync.Mutex
	namespaces map[string]bool
	inFlight   map[objectKey]int       // CreatePods under way that need the object
	done       map[objectKey]time.Time // when the last of them ended
}

func newReflectedObjects() *reflectedObjects {
	return &reflectedObjects{namespaces: map[string]bool{}, inFlight: map[objectKey]int{}, done: map[objectKey]time.Time{}}
}

func (r *reflectedObjects) namespaceKnown(ns string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.namespaces[ns]
}

func (r *reflectedObjects) setNamespace(ns string, known bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if known {
		r.namespaces[ns] = true
	} else {
		delete(r.namespaces, ns)
	}
}

// begin marks keys as needed by a CreatePod under way; the function it
// returns marks the CreatePod's end.
func (r *reflectedObjects) begin(keys []objectKey) (end func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, k := range keys {
		r.inFlight[k]++
	}
	return func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		now := time.Now()
		for _, k := range keys {
			if r.inFlight[k]--; r.inFlight[k] <= 0 {
				delete(r.inFlight, k)
			}
			r.done[k] = now
		}
	}
}

// busy says whether a CreatePod needs k now or ended after since, and
// forgets the ends before since.
func (r *reflectedObjects) busy(k objectKey, since time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.inFlight[k] > 0 {
		return true
	}
	at, ok := r.done[k]
	if ok && at.Before(since) {
		delete(r.done, k)
		return false
	}
	return ok
}

// ensureNamespace makes the member namespace ns if it is missing, labelled
// as fedlet's, and waits for its default ServiceAccount.
func (m *member) ensureNamespace(ctx context.Context, ns string) error {
	if m.objects.namespaceKnown(ns) {
		return nil
	}
	_, err := m.client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	switch {
	case err == nil:
		m.objects.setNamespace(ns, true)
		return nil
	case apierrors.IsForbidden(err):
		// Credentials limited to their namespaces: it is there, or creating
		// the pod will say it is not.
		return nil
	case !apierrors.IsNotFound(err):
		return m.memberError(err, "look up namespace %s", ns)
	}
	want := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name:   ns,
		Labels: map[string]string{LabelManagedBy: ManagedBy, LabelOriginCluster: m.origin},
	}}
	if _, err := m.client.CoreV1().Namespaces().Create(ctx, want, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return m.memberError(err, "create namespace %s", ns)
	}
	m.logger.Info("created member namespace", "namespace", ns)
	wctx, cancel := context.WithTimeout(ctx, defaultServiceAccountWait)
	defer cancel()
	err = wait.PollUntilContextCancel(wctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		_, err := m.client.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
		// Forbidden: we cannot tell; the pod's creation will.
		return err == nil || apierrors.IsForbidden(err), nil
	})
	if err != nil && ctx.Err() == nil {
		// Not fatal: the pod's creation says what is wrong, if anything is.
		m.logger.Warn("no default service account in the new member namespace yet", "namespace", ns)
	}
	m.objects.setNamespace(ns, true)
	return nil
}

// applyConfigMap creates want in the member or updates the copy there. A
// ConfigMap of the same name that is not this node's copy of the same hub
// object is left alone: FailedPrecondition.
func (m *member) applyConfigMap(ctx context.Context, want *corev1.ConfigMap) error {
	api := m.client.CoreV1().ConfigMaps(want.Namespace)
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := api.Get(ctx, want.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			_, err = api.Create(ctx, want, metav1.CreateOptions{})
			if apierrors.IsAlreadyExists(err) {
				return apierrors.NewConflict(corev1.Resource("configmaps"), want.Name, err) // made meanwhile: again
			}
			return err
		}
		if err != nil {
			return err
		}
		if err := m.sameOrigin(kindConfigMap, cur.ObjectMeta, want.ObjectMeta); err != nil {
			return err
		}
		if maps.Equal(cur.Data, want.Data) && equalBinary(cur.BinaryData, want.BinaryData) &&
			maps.Equal(cur.Labels, want.Labels) && equalBool(cur.Immutable, want.Immutable) {
			return nil
		}
		if cur.Immutable != nil && *cur.Immutable {
			// An immutable copy is replaced whole.
			if err := api.Delete(ctx, cur.Name, metav1.DeleteOptions{Preconditions: metav1.NewUIDPreconditions(string(cur.UID))}); err != nil && !apierrors.IsNotFound(err) {
				return err
			}
			_, err := api.Create(ctx, want, metav1.CreateOptions{})
			return err
		}
		next := cur.DeepCopy()
		next.Labels, next.Data, next.BinaryData, next.Immutable = want.Labels, want.Data, want.BinaryData, want.Immutable
		next.Annotations = withAnnotations(next.Annotations, want.Annotations)
		_, err = api.Update(ctx, next, metav1.UpdateOptions{})
		return err
	})
}

// applySecret is applyConfigMap for a Secret. A copy whose type changed is
// replaced whole, the type being immutable.
func (m *member) applySecret(ctx context.Context, want *corev1.Secret) error {
	api := m.client.CoreV1().Secrets(want.Namespace)
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := api.Get(ctx, want.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			_, err = api.Create(ctx, want, metav1.CreateOptions{})
			if apierrors.IsAlreadyExists(err) {
				return apierrors.NewConflict(corev1.Resource("secrets"), want.Name, err)
			}
			return err
		}
		if err != nil {
			return err
		}
		if err := m.sameOrigin(kindSecret, cur.ObjectMeta, want.ObjectMeta); err != nil {
			return err
		}
		if equalBinary(cur.Data, want.Data) && cur.Type == want.Type &&
			maps.Equal(cur.Labels, want.Labels) && equalBool(cur.Immutable, want.Immutable) {
			return nil
		}
		if cur.Type != want.Type || cur.Immutable != nil && *cur.Immutable {
			if err := api.Delete(ctx, cur.Name, metav1.DeleteOptions{Preconditions: metav1.NewUIDPreconditions(string(cur.UID))}); err != nil && !apierrors.IsNotFound(err) {
				return err
			}
			_, err := api.Create(ctx, want, metav1.CreateOptions{})
			return err
		}
		next := cur.DeepCopy()
		next.Labels, next.Data, next.Immutable = want.Labels, want.Data, want.Immutable
		next.Annotations = withAnnotations(next.Annotations, want.Annotations)
		_, err = api.Update(ctx, next, metav1.UpdateOptions{})
		return err
	})
}

// sameOrigin refuses to touch a member object that is not this node's copy
// of the same hub object.
func (m *member) sameOrigin(kind string, cur, want metav1.ObjectMeta) error {
	curNS, curName := originOf(cur.Namespace, cur.Name, cur.Labels, cur.Annotations)
	wantNS, wantName := originOf(want.Namespace, want.Name, want.Labels, want.Annotations)
	if m.owns(&cur) && curNS == wantNS && curName == wantName {
		return nil
	}
	return status.Errorf(codes.FailedPrecondition,
		"%s %s/%s exists in the member cluster of node %s and is not this node's copy of %s/%s (labels %v): refusing to overwrite it",
		kind, cur.Namespace, cur.Name, m.cfg.Node, wantNS, wantName, cur.Labels)
}

// withAnnotations adds add to cur, keeping what others put there.
func withAnnotations(cur, add map[string]string) map[string]string {
	if cur == nil {
		cur = map[string]string{}
	}
	maps.Copy(cur, add)
	return cur
}

func equalBinary(a, b map[string][]byte) bool {
	return maps.EqualFunc(a, b, func(x, y []byte) bool { return string(x) == string(y) })
}

func equalBool(a, b *bool) bool {
	return (a != nil && *a) == (b != nil && *b)
}
