package kubernetes

import (
	"context"
	"fmt"
	"maps"
	"sort"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
	"github.com/fedlet/fedlet/plugins/sdk"
)

// CreatePod creates the hub pod in the node's member, after the member
// namespace and the ConfigMaps and Secrets it needs, and returns the member
// pod's status. Repeated for a pod that is there (the same origin UID), it
// brings the member pod's labels and annotations and the objects up to
// date and creates nothing. A member pod of the same name made for another
// hub pod is FailedPrecondition; a member that refuses the pod (a quota,
// an admission plugin, validation) gives its reason, with
// FailedPrecondition, PermissionDenied or InvalidArgument.
func (b *Backend) CreatePod(ctx context.Context, req *runtimev1.CreatePodRequest) (*runtimev1.PodStatus, error) {
	m, err := b.memberFor(req.GetNode())
	if err != nil {
		return nil, err
	}
	hub, err := decodePod(req.GetPodObject())
	if err != nil {
		return nil, err
	}
	var cms []*corev1.ConfigMap
	for i, raw := range req.GetConfigMaps() {
		cm := &corev1.ConfigMap{}
		if err := cm.Unmarshal(raw); err != nil || cm.Name == "" {
			return nil, sdk.InvalidArgument(fmt.Sprintf("config_maps[%d]", i), fmt.Sprintf("not a core/v1 ConfigMap with a name in protobuf (%v)", err))
		}
		cms = append(cms, cm)
	}
	var secrets []*corev1.Secret
	for i, raw := range req.GetSecrets() {
		s := &corev1.Secret{}
		if err := s.Unmarshal(raw); err != nil || s.Name == "" {
			return nil, sdk.InvalidArgument(fmt.Sprintf("secrets[%d]", i), fmt.Sprintf("not a core/v1 Secret with a name in protobuf (%v)", err))
		}
		secrets = append(secrets, s)
	}
	return m.createPod(ctx, hub, cms, secrets)
}

func decodePod(raw []byte) (*corev1.Pod, error) {
	pod := &corev1.Pod{}
	if err := pod.Unmarshal(raw); err != nil {
		return nil, sdk.InvalidArgument("pod_object", "not a core/v1 Pod in protobuf: "+err.Error())
	}
	switch {
	case pod.UID == "":
		return nil, sdk.InvalidArgument("pod_object.metadata.uid", "must be set")
	case pod.Name == "":
		return nil, sdk.InvalidArgument("pod_object.metadata.name", "must be set")
	case pod.Namespace == "":
		return nil, sdk.InvalidArgument("pod_object.metadata.namespace", "must be set")
	}
	return pod, nil
}

func (m *member) createPod(ctx context.Context, hub *corev1.Pod, cms []*corev1.ConfigMap, secrets []*corev1.Secret) (*runtimev1.PodStatus, error) {
	ns := m.namespaceFor(hub.Namespace)
	podName := ns + "/" + hub.Name
	if err := m.ensureNamespace(ctx, ns); err != nil {
		return nil, err
	}
	var keys []objectKey
	for _, cm := range cms {
		keys = append(keys, objectKey{kindConfigMap, ns, cm.Name})
	}
	for _, s := range secrets {
		keys = append(keys, objectKey{kindSecret, ns, s.Name})
	}
	defer m.objects.begin(keys)()
	for _, cm := range cms {
		if err := m.applyConfigMap(ctx, reflectConfigMap(cm, m.origin, m.cfg.Node, ns)); err != nil {
			return nil, m.memberError(err, "copy ConfigMap %s/%s of pod %s", ns, cm.Name, podName)
		}
	}
	for _, s := range secrets {
		if err := m.applySecret(ctx, reflectSecret(s, m.origin, m.cfg.Node, ns)); err != nil {
			return nil, m.memberError(err, "copy Secret %s/%s of pod %s", ns, s.Name, podName)
		}
	}

	tokenSecrets := map[string]string{}
	for _, s := range secrets {
		if v := s.Annotations[AnnotationProjectedVolume]; v != "" {
			tokenSecrets[v] = s.Name
		}
	}
	want := reflectPod(hub, m.origin, m.cfg.Node, ns, tokenSecrets)
	if h := m.hub(); h != nil && h.cfg.APIServer != "" && len(tokenSecrets) > 0 {
		pointAtHub(&want.Spec, h.cfg.APIServer)
	}
	api := m.client.CoreV1().Pods(ns)
	// The cache spares the member a request when the pod is there already;
	// anything else is decided on the member's own answer.
	cur := m.cachedPod(ns, hub.Name)
	if cur != nil && m.samePod(cur, hub) != nil {
		cur = nil
	}
	if cur == nil {
		created, err := api.Create(ctx, want, metav1.CreateOptions{})
		switch {
		case err == nil:
			m.logger.Info("created member pod", "pod", podName, "origin_uid", hub.UID)
			m.created.add(created.UID, &runtimev1.PodRef{Uid: string(hub.UID), Namespace: hub.Namespace, Name: hub.Name})
			m.awaitCached(ctx, created)
			return podStatusOrError(created)
		case apierrors.IsNotFound(err):
			// The namespace went away since it was seen: the next try makes it.
			m.objects.setNamespace(ns, false)
			return nil, status.Errorf(codes.Unavailable, "create pod %s in the member cluster of node %s: %v", podName, m.cfg.Node, err)
		case !apierrors.IsAlreadyExists(err):
			return nil, m.memberError(err, "create pod %s", podName)
		}
		if cur, err = api.Get(ctx, hub.Name, metav1.GetOptions{}); err != nil {
			return nil, m.memberError(err, "read pod %s", podName)
		}
	}
	if err := m.samePod(cur, hub); err != nil {
		return nil, err
	}
	if maps.Equal(cur.Labels, want.Labels) && hasAnnotations(cur.Annotations, want.Annotations) {
		return podStatusOrError(cur)
	}
	var updated *corev1.Pod
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		live, err := api.Get(ctx, hub.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if err := m.samePod(live, hub); err != nil {
			return err
		}
		live.Labels = want.Labels
		live.Annotations = withAnnotations(live.Annotations, want.Annotations)
		updated, err = api.Update(ctx, live, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return nil, m.memberError(err, "update labels and annotations of pod %s", podName)
	}
	return podStatusOrError(updated)
}

// samePod refuses a member pod of the same name that stands for another hub
// pod, or that fedlet did not make.
func (m *member) samePod(cur, hub *corev1.Pod) error {
	if m.owns(cur) && cur.Labels[LabelOriginUID] == string(hub.UID) {
		return nil
	}
	if !m.owns(cur) {
		return status.Errorf(codes.FailedPrecondition, "pod %s/%s exists in the member cluster of node %s and was not created by fedlet for this node: refusing to touch it", cur.Namespace, cur.Name, m.cfg.Node)
	}
	if cur.DeletionTimestamp != nil {
		// A pod of the same name going away (a StatefulSet's pod replaced):
		// a later try finds the name free.
		return status.Errorf(codes.Unavailable, "pod %s/%s of the member cluster of node %s still terminates for the previous pod of that name (origin uid %s); try again once it is gone", cur.Namespace, cur.Name, m.cfg.Node, cur.Labels[LabelOriginUID])
	}
	return status.Errorf(codes.FailedPrecondition, "pod %s/%s exists in the member cluster of node %s for another pod (origin uid %s, not %s)", cur.Namespace, cur.Name, m.cfg.Node, cur.Labels[LabelOriginUID], hub.UID)
}

func hasAnnotations(cur, want map[string]string) bool {
	for k, v := range want {
		if got, ok := cur[k]; !ok || got != v {
			return false
		}
	}
	return true
}

func podStatusOrError(pod *corev1.Pod) (*runtimev1.PodStatus, error) {
	st, err := podStatus(pod)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "encode status of member pod %s/%s: %v", pod.Namespace, pod.Name, err)
	}
	return st, nil
}

// cachedPod is the node's member pod ns/name as the informer has it, nil
// when it has none.
func (m *member) cachedPod(ns, name string) *corev1.Pod {
	obj, ok, err := m.pods.GetIndexer().GetByKey(ns + "/" + name)
	if err != nil || !ok {
		return nil
	}
	pod, _ := obj.(*corev1.Pod)
	return pod
}

// cacheLag bounds how long CreatePod waits for the pod cache to see the pod
// it made: a watch event takes milliseconds; a member slower than this is
// still answered, and ListPods catches up when the event comes.
const cacheLag = 2 * time.Second

// awaitCached returns once the node's pod cache holds pod (or a newer
// version of it), so that a ListPods after CreatePod lists it: the agent
// takes a pod missing from the list for one the member lost.
func (m *member) awaitCached(ctx context.Context, pod *corev1.Pod) {
	if !m.pods.HasSynced() {
		return // ListPods asks the member itself until the cache is filled
	}
	err := wait.PollUntilContextTimeout(ctx, 2*time.Millisecond, cacheLag, true, func(context.Context) (bool, error) {
		cur := m.cachedPod(pod.Namespace, pod.Name)
		return cur != nil && cur.UID == pod.UID, nil
	})
	if err != nil {
		m.logger.Debug("pod cache has not seen a created pod yet", "pod", pod.Namespace+"/"+pod.Name)
	}
}

// DeletePod deletes the member pod of the hub pod with the grace period
// given and the member pod's UID as precondition, and returns once the
// member has accepted it. A pod that is not there is deleted already.
func (b *Backend) DeletePod(ctx context.Context, req *runtimev1.DeletePodRequest) (*runtimev1.DeletePodResponse, error) {
	m, err := b.memberFor(req.GetNode())
	if err != nil {
		return nil, err
	}
	ref := req.GetPod()
	if req.GetGracePeriodSeconds() < 0 {
		return nil, sdk.InvalidArgument("grace_period_seconds", "must not be negative")
	}
	if err := m.deletePod(ctx, ref, req.GetGracePeriodSeconds()); err != nil {
		return nil, err
	}
	return &runtimev1.DeletePodResponse{}, nil
}

func (m *member) deletePod(ctx context.Context, ref *runtimev1.PodRef, grace int64) error {
	uid := ref.GetUid()
	// Asked before the deletion, so that its event is never taken for a loss.
	m.deletes.ask(uid)
	pods, err := m.podsOf(ctx, uid, ref.GetNamespace())
	if err != nil {
		return err
	}
	for _, pod := range pods {
		err := m.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
			GracePeriodSeconds: &grace,
			Preconditions:      metav1.NewUIDPreconditions(string(pod.UID)),
		})
		switch {
		case apierrors.IsNotFound(err), apierrors.IsConflict(err):
			// Gone already (Conflict: the name is another pod's now).
			continue
		case err != nil:
			return m.memberError(err, "delete pod %s/%s", pod.Namespace, pod.Name)
		}
		m.logger.Info("deleted member pod", "pod", pod.Namespace+"/"+pod.Name, "origin_uid", uid, "grace_period_seconds", grace)
	}
	kick(m.kickGarbage)
	return nil
}

// podsOf finds the node's member pods of a hub pod: in the informer's
// cache, else (a pod created a moment ago, a cache not filled yet) by
// listing the member.
func (m *member) podsOf(ctx context.Context, uid, hubNamespace string) ([]*corev1.Pod, error) {
	objs, err := m.pods.GetIndexer().ByIndex(originUIDIndex, uid)
	if err == nil && len(objs) > 0 {
		var pods []*corev1.Pod
		for _, obj := range objs {
			if pod, ok := obj.(*corev1.Pod); ok {
				pods = append(pods, pod)
			}
		}
		return pods, nil
	}
	ns := metav1.NamespaceAll
	if m.cfg.Namespace != "" || hubNamespace != "" {
		ns = m.namespaceFor(hubNamespace)
	}
	list, err := m.client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: podSelector(m.origin, m.cfg.Node, uid).String()})
	if err != nil {
		return nil, m.memberError(err, "look for the pod of origin uid %s", uid)
	}
	pods := make([]*corev1.Pod, 0, len(list.Items))
	for i := range list.Items {
		pods = append(pods, &list.Items[i])
	}
	return pods, nil
}

// ListPods lists the node's member pods, from the informer's cache once it
// has listed the member, else from the member itself.
func (b *Backend) ListPods(ctx context.Context, req *runtimev1.ListPodsRequest) (*runtimev1.ListPodsResponse, error) {
	m, err := b.memberFor(req.GetNode())
	if err != nil {
		return nil, err
	}
	pods, err := m.listPods(ctx)
	if err != nil {
		return nil, err
	}
	resp := &runtimev1.ListPodsResponse{}
	for _, pod := range pods {
		if pod.Labels[LabelOriginUID] == "" {
			continue
		}
		st, err := podStatusOrError(pod)
		if err != nil {
			return nil, err
		}
		resp.Pods = append(resp.Pods, st)
	}
	return resp, nil
}

func (m *member) listPods(ctx context.Context) ([]*corev1.Pod, error) {
	var pods []*corev1.Pod
	if m.pods.HasSynced() {
		for _, obj := range m.pods.GetStore().List() {
			if pod, ok := obj.(*corev1.Pod); ok {
				pods = append(pods, pod)
			}
		}
	} else {
		list, err := m.client.CoreV1().Pods(m.cfg.Namespace).List(ctx, metav1.ListOptions{LabelSelector: nodeSelector(m.origin, m.cfg.Node).String()})
		if err != nil {
			return nil, m.memberError(err, "list pods")
		}
		for i := range list.Items {
			pods = append(pods, &list.Items[i])
		}
	}
	sort.Slice(pods, func(i, j int) bool { return pods[i].Namespace+"/"+pods[i].Name < pods[j].Namespace+"/"+pods[j].Name })
	return pods, nil
}

// podByUID is the member pod of a hub pod, for the streaming calls: the
// newest when a terminating one is still there beside it.
func (m *member) podByUID(ctx context.Context, uid string) (*corev1.Pod, error) {
	pods, err := m.podsOf(ctx, uid, "")
	if err != nil {
		return nil, err
	}
	if len(pods) == 0 {
		return nil, status.Errorf(codes.NotFound, "pod %s not found in the member cluster of node %s", uid, m.cfg.Node)
	}
	best := pods[0]
	for _, p := range pods[1:] {
		if best.DeletionTimestamp != nil && p.DeletionTimestamp == nil {
			best = p
		}
	}
	return best, nil
}
