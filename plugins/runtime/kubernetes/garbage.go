package kubernetes

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const (
	// garbageInterval is how often the member's ConfigMaps and Secrets are
	// collected when no pod deletion asks for it sooner.
	garbageInterval = 5 * time.Minute
	// garbageDelay gathers the pod deletions of a moment into one
	// collection.
	garbageDelay = 2 * time.Second
	// garbageTimeout bounds one collection: a member that hangs must not
	// hold the collector forever.
	garbageTimeout = time.Minute
	// deletionMemory is how long a deletion asked for a pod that is gone is
	// remembered.
	deletionMemory = 10 * time.Minute
)

// garbageLoop collects after pod deletions and every garbageInterval, until
// ctx ends.
func (m *member) garbageLoop(ctx context.Context) {
	t := time.NewTicker(garbageInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-m.kickGarbage:
			select {
			case <-ctx.Done():
				return
			case <-time.After(garbageDelay):
			}
		}
		cctx, cancel := context.WithTimeout(ctx, garbageTimeout)
		if err := m.collectGarbage(cctx); err != nil && ctx.Err() == nil {
			m.logger.Warn("collect unused ConfigMaps and Secrets", "err", err)
		}
		cancel()
	}
}

// collectGarbage deletes the ConfigMaps and Secrets this node copied into
// the member that none of its member pods refers to any more. Pods and
// objects are listed from the member (by their origin labels), not taken
// from a cache, so that a pod created before the collection began is never
// missed; the objects of a CreatePod that had not ended by then are left
// for the next collection.
func (m *member) collectGarbage(ctx context.Context) error {
	m.deletes.prune(time.Now().Add(-deletionMemory), func(uid string) bool {
		objs, err := m.pods.GetIndexer().ByIndex(originUIDIndex, uid)
		return err != nil || len(objs) > 0
	})
	began := time.Now()
	sel := metav1.ListOptions{LabelSelector: nodeSelector(m.origin, m.cfg.Node).String()}
	ns := m.cfg.Namespace // "": every namespace
	pods, err := m.client.CoreV1().Pods(ns).List(ctx, sel)
	if err != nil {
		return m.memberError(err, "list pods")
	}
	used := map[objectKey]bool{}
	for i := range pods.Items {
		for _, k := range references(&pods.Items[i]) {
			used[k] = true
		}
	}
	unused := func(k objectKey) bool { return !used[k] && !m.objects.busy(k, began) }

	cms, err := m.client.CoreV1().ConfigMaps(ns).List(ctx, sel)
	if err != nil {
		return m.memberError(err, "list ConfigMaps")
	}
	for _, cm := range cms.Items {
		if k := (objectKey{kindConfigMap, cm.Namespace, cm.Name}); unused(k) {
			err := m.client.CoreV1().ConfigMaps(cm.Namespace).Delete(ctx, cm.Name, metav1.DeleteOptions{Preconditions: metav1.NewUIDPreconditions(string(cm.UID))})
			switch {
			case err == nil:
				m.logger.Info("deleted unused member ConfigMap", "configmap", cm.Namespace+"/"+cm.Name)
			case !apierrors.IsNotFound(err) && !apierrors.IsConflict(err):
				return m.memberError(err, "delete unused ConfigMap %s/%s", cm.Namespace, cm.Name)
			}
		}
	}
	secrets, err := m.client.CoreV1().Secrets(ns).List(ctx, sel)
	if err != nil {
		return m.memberError(err, "list Secrets")
	}
	for _, s := range secrets.Items {
		if k := (objectKey{kindSecret, s.Namespace, s.Name}); unused(k) {
			err := m.client.CoreV1().Secrets(s.Namespace).Delete(ctx, s.Name, metav1.DeleteOptions{Preconditions: metav1.NewUIDPreconditions(string(s.UID))})
			switch {
			case err == nil:
				m.logger.Info("deleted unused member Secret", "secret", s.Namespace+"/"+s.Name)
			case !apierrors.IsNotFound(err) && !apierrors.IsConflict(err):
				return m.memberError(err, "delete unused Secret %s/%s", s.Namespace, s.Name)
			}
		}
	}
	return nil
}

// references are the ConfigMaps and Secrets a pod refers to: volumes
// (projected ones too), env, envFrom and image pull secrets.
func references(pod *corev1.Pod) []objectKey {
	ns := pod.Namespace
	var out []objectKey
	cm := func(name string) { out = append(out, objectKey{kindConfigMap, ns, name}) }
	secret := func(name string) { out = append(out, objectKey{kindSecret, ns, name}) }
	for _, v := range pod.Spec.Volumes {
		switch {
		case v.ConfigMap != nil:
			cm(v.ConfigMap.Name)
		case v.Secret != nil:
			secret(v.Secret.SecretName)
		case v.Projected != nil:
			for _, s := range v.Projected.Sources {
				if s.ConfigMap != nil {
					cm(s.ConfigMap.Name)
				}
				if s.Secret != nil {
					secret(s.Secret.Name)
				}
			}
		}
	}
	containers := append(append([]corev1.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...)
	for _, c := range containers {
		for _, e := range c.EnvFrom {
			if e.ConfigMapRef != nil {
				cm(e.ConfigMapRef.Name)
			}
			if e.SecretRef != nil {
				secret(e.SecretRef.Name)
			}
		}
		for _, e := range c.Env {
			if e.ValueFrom == nil {
				continue
			}
			if r := e.ValueFrom.ConfigMapKeyRef; r != nil {
				cm(r.Name)
			}
			if r := e.ValueFrom.SecretKeyRef; r != nil {
				secret(r.Name)
			}
		}
	}
	for _, s := range pod.Spec.ImagePullSecrets {
		secret(s.Name)
	}
	return out
}
