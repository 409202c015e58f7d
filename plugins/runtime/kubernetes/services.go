package kubernetes

import (
	"context"
	"maps"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// What marks the Services and EndpointSlices the plugin reflects.
const (
	// LabelOriginKind says which kind of hub object a member object
	// reflects, for the kinds collected by their own loop (Service,
	// EndpointSlice).
	LabelOriginKind = "fedlet.io/origin-kind"
	// SliceManager is the EndpointSlices' managed-by value: the member's
	// EndpointSlice controller leaves them alone.
	SliceManager = "kubernetes-plugin.fedlet.io"
)

// serviceResync is how often the reflection is checked when nothing
// changed (a member object deleted by hand comes back).
const serviceResync = 30 * time.Second

// serviceLoop keeps the member's reflection of the hub's Services current:
// at every change of the hub's Services or EndpointSlices or of the node's
// pods, and every serviceResync, until ctx ends.
func (m *member) serviceLoop(ctx context.Context) {
	t := time.NewTicker(serviceResync)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-m.kickServices:
		}
		if err := m.reflectServices(ctx); err != nil && ctx.Err() == nil {
			m.logger.Warn("reflect the hub's Services", "err", err)
		}
	}
}

// reflectServices makes the member hold, for every hub Service whose
// selector matches a pod of the node, a selector-less Service of the same
// name and ports with copies of the Service's EndpointSlices, and nothing
// else of that kind.
func (m *member) reflectServices(ctx context.Context) error {
	hub := m.hub()
	if hub == nil || !hub.synced() || !m.pods.HasSynced() {
		return nil
	}
	wantServices := map[string]*corev1.Service{}          // by member namespace/name
	wantSlices := map[string]*discoveryv1.EndpointSlice{} // by member namespace/name
	for _, svc := range m.servicesOfNodePods(hub) {
		ns := m.namespaceFor(svc.Namespace)
		wantServices[ns+"/"+svc.Name] = reflectService(svc, m.origin, m.cfg.Node, ns)
		for _, s := range hub.slicesOf(svc.Namespace, svc.Name) {
			wantSlices[ns+"/"+s.Name] = reflectSlice(s, svc.Name, m.origin, m.cfg.Node, ns)
		}
	}

	ours := labels.SelectorFromSet(labels.Set{LabelOriginCluster: m.origin, LabelNode: m.cfg.Node}).String()
	have, err := m.client.CoreV1().Services(metav1.NamespaceAll).List(ctx, metav1.ListOptions{LabelSelector: ours + "," + LabelOriginKind + "=Service"})
	if err != nil {
		return m.memberError(err, "list reflected Services")
	}
	haveSlices, err := m.client.DiscoveryV1().EndpointSlices(metav1.NamespaceAll).List(ctx, metav1.ListOptions{LabelSelector: ours + "," + LabelOriginKind + "=EndpointSlice"})
	if err != nil {
		return m.memberError(err, "list reflected EndpointSlices")
	}
	for _, svc := range wantServices {
		if err := m.ensureNamespace(ctx, svc.Namespace); err != nil {
			return err
		}
		if err := m.applyService(ctx, svc); err != nil {
			return err
		}
	}
	for _, s := range wantSlices {
		if err := m.applySlice(ctx, s); err != nil {
			return err
		}
	}
	for _, s := range haveSlices.Items {
		if _, keep := wantSlices[s.Namespace+"/"+s.Name]; !keep {
			if err := m.client.DiscoveryV1().EndpointSlices(s.Namespace).Delete(ctx, s.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				return m.memberError(err, "delete EndpointSlice %s/%s", s.Namespace, s.Name)
			}
		}
	}
	for _, svc := range have.Items {
		if _, keep := wantServices[svc.Namespace+"/"+svc.Name]; !keep {
			if err := m.client.CoreV1().Services(svc.Namespace).Delete(ctx, svc.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				return m.memberError(err, "delete Service %s/%s", svc.Namespace, svc.Name)
			}
			m.logger.Info("removed the reflection of a hub Service", "service", svc.Namespace+"/"+svc.Name)
		}
	}
	return nil
}

// servicesOfNodePods are the hub Services with a selector that matches at
// least one of the node's pods (they keep the hub pod's labels).
func (m *member) servicesOfNodePods(hub *hubView) []*corev1.Service {
	podLabels := map[string][]labels.Set{} // by hub namespace
	for _, obj := range m.pods.GetStore().List() {
		pod := obj.(*corev1.Pod)
		ns, _ := originOf(pod.Namespace, pod.Name, pod.Labels, pod.Annotations)
		podLabels[ns] = append(podLabels[ns], labels.Set(pod.Labels))
	}
	var out []*corev1.Service
	for _, svc := range hub.allServices() {
		if len(svc.Spec.Selector) == 0 || svc.Spec.Type == corev1.ServiceTypeExternalName {
			continue
		}
		sel := labels.SelectorFromSet(svc.Spec.Selector)
		for _, l := range podLabels[svc.Namespace] {
			if sel.Matches(l) {
				out = append(out, svc)
				break
			}
		}
	}
	return out
}

// reflectService is the member's Service for a hub Service: the same name
// and ports, no selector (its EndpointSlices are the hub's), a ClusterIP of
// the member's (or none, when the hub's is headless).
func reflectService(hub *corev1.Service, origin, node, namespace string) *corev1.Service {
	l := originLabels(origin, node, hub.Namespace, hub.Name, string(hub.UID))
	l[LabelOriginKind] = "Service"
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: hub.Name, Namespace: namespace, Labels: l, Annotations: originAnnotations(hub.Namespace, hub.Name)},
		Spec: corev1.ServiceSpec{
			Type:            corev1.ServiceTypeClusterIP,
			SessionAffinity: hub.Spec.SessionAffinity,
			IPFamilies:      hub.Spec.IPFamilies,
		},
	}
	if hub.Spec.ClusterIP == corev1.ClusterIPNone {
		svc.Spec.ClusterIP = corev1.ClusterIPNone
	}
	for _, p := range hub.Spec.Ports {
		svc.Spec.Ports = append(svc.Spec.Ports, corev1.ServicePort{
			Name: p.Name, Protocol: p.Protocol, Port: p.Port, TargetPort: p.TargetPort, AppProtocol: p.AppProtocol,
		})
	}
	return svc
}

// reflectSlice is the member's copy of a hub EndpointSlice of the Service
// service: the same endpoints (their addresses are the hub pods', which are
// the member pods' for pods run there), without what names the hub's nodes.
func reflectSlice(hub *discoveryv1.EndpointSlice, service, origin, node, namespace string) *discoveryv1.EndpointSlice {
	l := originLabels(origin, node, hub.Namespace, hub.Name, string(hub.UID))
	l[LabelOriginKind] = "EndpointSlice"
	l[discoveryv1.LabelServiceName] = service
	l[discoveryv1.LabelManagedBy] = SliceManager
	s := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: hub.Name, Namespace: namespace, Labels: l, Annotations: originAnnotations(hub.Namespace, hub.Name)},
		AddressType: hub.AddressType,
		Ports:       hub.Ports,
	}
	for _, e := range hub.Endpoints {
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{Addresses: e.Addresses, Conditions: e.Conditions, Hostname: e.Hostname})
	}
	return s
}

// applyService creates svc or brings the reflection there up to date; a
// Service of that name that is not the plugin's is left alone.
func (m *member) applyService(ctx context.Context, want *corev1.Service) error {
	api := m.client.CoreV1().Services(want.Namespace)
	_, err := api.Create(ctx, want, metav1.CreateOptions{})
	if err == nil || !apierrors.IsAlreadyExists(err) {
		if err != nil {
			return m.memberError(err, "create Service %s/%s", want.Namespace, want.Name)
		}
		m.logger.Info("reflected a hub Service", "service", want.Namespace+"/"+want.Name)
		return nil
	}
	have, err := api.Get(ctx, want.Name, metav1.GetOptions{})
	if err != nil {
		return m.memberError(err, "read Service %s/%s", want.Namespace, want.Name)
	}
	if !m.isOurs(have.Labels) {
		m.logger.Warn("a member Service has the name of a hub Service: not reflected", "service", want.Namespace+"/"+want.Name)
		return nil
	}
	if maps.Equal(have.Labels, want.Labels) && equality.Semantic.DeepEqual(have.Spec.Ports, want.Spec.Ports) {
		return nil
	}
	have.Labels, have.Annotations, have.Spec.Ports = want.Labels, want.Annotations, want.Spec.Ports
	if _, err := api.Update(ctx, have, metav1.UpdateOptions{}); err != nil {
		return m.memberError(err, "update Service %s/%s", want.Namespace, want.Name)
	}
	return nil
}

// applySlice creates the EndpointSlice copy or brings it up to date.
func (m *member) applySlice(ctx context.Context, want *discoveryv1.EndpointSlice) error {
	api := m.client.DiscoveryV1().EndpointSlices(want.Namespace)
	_, err := api.Create(ctx, want, metav1.CreateOptions{})
	if err == nil || !apierrors.IsAlreadyExists(err) {
		if err != nil {
			return m.memberError(err, "create EndpointSlice %s/%s", want.Namespace, want.Name)
		}
		return nil
	}
	have, err := api.Get(ctx, want.Name, metav1.GetOptions{})
	if err != nil {
		return m.memberError(err, "read EndpointSlice %s/%s", want.Namespace, want.Name)
	}
	if !m.isOurs(have.Labels) {
		return nil
	}
	if maps.Equal(have.Labels, want.Labels) && equality.Semantic.DeepEqual(have.Endpoints, want.Endpoints) && equality.Semantic.DeepEqual(have.Ports, want.Ports) {
		return nil
	}
	have.Labels, have.Annotations, have.Endpoints, have.Ports = want.Labels, want.Annotations, want.Endpoints, want.Ports
	if _, err := api.Update(ctx, have, metav1.UpdateOptions{}); err != nil {
		return m.memberError(err, "update EndpointSlice %s/%s", want.Namespace, want.Name)
	}
	return nil
}

// isOurs says whether a member object's labels make it this node's.
func (m *member) isOurs(l map[string]string) bool {
	return l[LabelOriginCluster] == m.origin && l[LabelNode] == m.cfg.Node
}
