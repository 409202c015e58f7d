package members

import (
	"bytes"
	"context"
	"log/slog"
	"maps"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// Watch follows the members' Secrets in namespace and calls changed with
// the whole set of valid members, by name, at the start and whenever it
// changes; calls come one at a time, from Watch's goroutine. A Secret that
// is not a valid member is left out and logged. Watch returns when ctx ends.
func Watch(ctx context.Context, client kubernetes.Interface, namespace string, changed func(map[string]Member), log *slog.Logger) {
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0,
		informers.WithNamespace(namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("type", string(SecretType)).String()
		}))
	secrets := factory.Core().V1().Secrets()
	informer := secrets.Informer()
	dirty := make(chan struct{}, 1)
	mark := func(any) {
		select {
		case dirty <- struct{}{}:
		default:
		}
	}
	_, _ = informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    mark,
		UpdateFunc: func(_, obj any) { mark(obj) },
		DeleteFunc: mark,
	})
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), informer.HasSynced) {
		return
	}
	mark(nil) // the first set, even an empty one

	var last map[string]Member
	refused := map[string]string{} // Secret name → resourceVersion logged
	for {
		select {
		case <-ctx.Done():
			return
		case <-dirty:
		}
		list, err := secrets.Lister().Secrets(namespace).List(labels.Everything())
		if err != nil {
			log.Error("list member secrets", "namespace", namespace, "err", err)
			continue
		}
		set := validMembers(list, refused, log)
		if last != nil && maps.EqualFunc(last, set, sameMember) {
			continue
		}
		last = set
		changed(maps.Clone(set))
	}
}

// validMembers reads the Secrets, logging each invalid one once per version.
func validMembers(list []*corev1.Secret, refused map[string]string, log *slog.Logger) map[string]Member {
	set := map[string]Member{}
	for _, s := range list {
		m, err := FromSecret(s)
		if err != nil {
			if refused[s.Name] != s.ResourceVersion {
				refused[s.Name] = s.ResourceVersion
				log.Error("member secret refused: no virtual node for it", "member", s.Name, "err", err)
			}
			continue
		}
		delete(refused, s.Name)
		set[m.Name] = m
	}
	return set
}

func sameMember(a, b Member) bool {
	return a.Name == b.Name && a.Namespace == b.Namespace && bytes.Equal(a.Kubeconfig, b.Kubeconfig)
}
