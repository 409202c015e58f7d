package federation

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	k8splugin "github.com/fedlet/fedlet/plugins/runtime/kubernetes"
)

// TestServiceIsReflectedIntoTheMember: a hub Service selecting a pod that
// runs in the member is reflected there, selector-less, with the hub's
// EndpointSlice, so that a client in the member reaches the pod through
// it; deleting the Service on the hub removes the reflection. (The member
// has no kube-proxy of its own in `fedlet up`, so the client dials the
// endpoint the reflected slice names.)
func TestServiceIsReflectedIntoTheMember(t *testing.T) {
	ns := namespace(t)
	ctx := context.Background()
	web := sleeper("web")
	web.Labels = map[string]string{"app": "web"}
	web.Spec.Containers[0].Command = []string{"sh", "-c", "mkdir -p /www && echo hello from the hub web > /www/index.html && exec httpd -f -p 8080 -h /www"}
	toMember(&web.Spec)
	if _, err := hub.Client().CoreV1().Pods(ns).Create(ctx, web, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "web"},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080), Protocol: corev1.ProtocolTCP}},
		},
	}
	if _, err := hub.Client().CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	running := waitRunning(t, ns, web.Name, member.Name())

	// In the member: the Service, and a slice naming the pod's address.
	var endpoint string
	poll(t, 2*time.Minute, "the Service and its EndpointSlice reflected into the member", func(ctx context.Context) (bool, string) {
		msvc, err := member.Client().CoreV1().Services(ns).Get(ctx, svc.Name, metav1.GetOptions{})
		if err != nil {
			return false, "service: " + err.Error()
		}
		if len(msvc.Spec.Selector) != 0 || len(msvc.Spec.Ports) != 1 || msvc.Spec.Ports[0].Port != 80 || msvc.Spec.Ports[0].TargetPort.IntValue() != 8080 ||
			msvc.Labels[originCluster] != hub.Name() || msvc.Labels[k8splugin.LabelOriginKind] != "Service" {
			return false, fmt.Sprintf("member Service %+v %v", msvc.Spec, msvc.Labels)
		}
		list, err := member.Client().DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=web"})
		if err != nil {
			return false, "slices: " + err.Error()
		}
		for _, s := range list.Items {
			if s.Labels[discoveryv1.LabelManagedBy] != k8splugin.SliceManager {
				return false, fmt.Sprintf("slice %s managed by %q", s.Name, s.Labels[discoveryv1.LabelManagedBy])
			}
			for _, e := range s.Endpoints {
				if slices.Contains(e.Addresses, running.Status.PodIP) && len(s.Ports) == 1 && ptr.Deref(s.Ports[0].Port, 0) == 8080 {
					endpoint = fmt.Sprintf("%s:%d", running.Status.PodIP, *s.Ports[0].Port)
					return true, ""
				}
			}
		}
		return false, fmt.Sprintf("%d slices, none with %s:8080", len(list.Items), running.Status.PodIP)
	})

	// A client of the member's own reaches the pod at that endpoint.
	client := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "client", Namespace: ns},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers: []corev1.Container{{
				Name: "wget", Image: member.Image(),
				Command: []string{"sh", "-c", "for i in 1 2 3 4 5; do timeout 3 wget -q -O - http://" + endpoint + "/ && exit 0; sleep 1; done; exit 1"},
			}},
		},
	}
	if _, err := member.Client().CoreV1().Pods(ns).Create(ctx, client, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, 2*time.Minute, "the member's client fetching the page", func(ctx context.Context) (bool, string) {
		p, err := member.Client().CoreV1().Pods(ns).Get(ctx, client.Name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		if p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
			return false, describePod(p)
		}
		out, err := member.Client().CoreV1().Pods(ns).GetLogs(client.Name, &corev1.PodLogOptions{}).DoRaw(ctx)
		if err != nil {
			return false, err.Error()
		}
		if p.Status.Phase != corev1.PodSucceeded || !strings.Contains(string(out), "hello from the hub web") {
			webLogs, _ := member.Client().CoreV1().Pods(ns).GetLogs(web.Name, &corev1.PodLogOptions{}).DoRaw(ctx)
			t.Fatalf("client %s: %q (the web pod's logs: %q)", describePod(p), out, webLogs)
		}
		return true, ""
	})

	if err := hub.Client().CoreV1().Services(ns).Delete(ctx, svc.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, 2*time.Minute, "the reflection gone with the hub's Service", func(ctx context.Context) (bool, string) {
		_, err := member.Client().CoreV1().Services(ns).Get(ctx, svc.Name, metav1.GetOptions{})
		if !apierrors.IsNotFound(err) {
			return false, fmt.Sprintf("member Service: %v", err)
		}
		list, err := member.Client().DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: k8splugin.LabelOriginKind + "=EndpointSlice"})
		if err != nil || len(list.Items) != 0 {
			return false, fmt.Sprintf("member slices: %d (%v)", len(list.Items), err)
		}
		return true, ""
	})
}
