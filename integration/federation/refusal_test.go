package federation

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fedlet/fedlet/core/podproxy"
)

// TestMemberRefusalBecomesThePodsStatus: the member's quota refuses the
// ConfigMap a hub pod needs. The hub pod waits with the member's reason and
// a Warning event; once the quota is lifted the pod runs, once.
func TestMemberRefusalBecomesThePodsStatus(t *testing.T) {
	ns := namespace(t)
	ctx := context.Background()

	// The member namespace is the hub's (no mapping for member-1); made
	// here so that its quota is in place before the pod comes.
	if _, err := member.Client().CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	quota := &corev1.ResourceQuota{
		ObjectMeta: metav1.ObjectMeta{Name: "no-more-configmaps"},
		Spec:       corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{corev1.ResourceConfigMaps: resource.MustParse("0")}},
	}
	if _, err := member.Client().CoreV1().ResourceQuotas(ns).Create(ctx, quota, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Admission enforces a quota once the member's quota controller has
	// counted what the namespace holds.
	poll(t, time.Minute, "the member's quota counted", func(ctx context.Context) (bool, string) {
		q, err := member.Client().CoreV1().ResourceQuotas(ns).Get(ctx, quota.Name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		_, counted := q.Status.Hard[corev1.ResourceConfigMaps]
		return counted, fmt.Sprintf("status %+v", q.Status)
	})

	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "settings"}, Data: map[string]string{"mode": "fast"}}
	if _, err := hub.Client().CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	p := sleeper("refused")
	p.Spec.Containers[0].EnvFrom = []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: cm.Name}}}}
	toMember(&p.Spec)
	if _, err := hub.Client().CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, 2*time.Minute, "the hub pod waiting with the member's refusal", func(ctx context.Context) (bool, string) {
		got, err := hub.Client().CoreV1().Pods(ns).Get(ctx, p.Name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		if len(got.Status.ContainerStatuses) != 1 || got.Status.ContainerStatuses[0].State.Waiting == nil {
			return false, describePod(got)
		}
		w := got.Status.ContainerStatuses[0].State.Waiting
		return got.Status.Phase == corev1.PodPending && w.Reason == podproxy.ReasonProviderFailed && strings.Contains(w.Message, "exceeded quota"),
			fmt.Sprintf("waiting %s: %s", w.Reason, w.Message)
	})
	poll(t, time.Minute, "a FailedCreate event naming the quota", func(ctx context.Context) (bool, string) {
		events, err := hub.Client().CoreV1().Events(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		for _, e := range events.Items {
			if e.InvolvedObject.Name == p.Name && e.Reason == podproxy.EventFailedCreate && strings.Contains(e.Message, "exceeded quota") {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d events, none FailedCreate about the quota", len(events.Items))
	})

	if err := member.Client().CoreV1().ResourceQuotas(ns).Delete(ctx, quota.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitRunning(t, ns, p.Name, member.Name())
	pods, err := memberPods(ctx, ns)
	if err != nil {
		t.Fatal(err)
	}
	if len(pods) != 1 || restarts(&pods[0]) != 0 {
		t.Errorf("the member runs %s; want the pod once", describePods(pods))
	}
}
