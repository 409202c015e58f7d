package federation

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// TestDeploymentRunsInTheMember follows a Deployment of the hub whose pods
// select the member's virtual node: they run in the member, on its
// containerd node, and the hub sees them Running with their addresses;
// logs and exec on the hub reach them; the ConfigMap their environment
// comes from is in the member before them and follows its changes; and
// deleting the Deployment deletes them in the member.
func TestDeploymentRunsInTheMember(t *testing.T) {
	ns := namespace(t)
	ctx := context.Background()
	const greeting, changed = "hello from the hub", "hello again"

	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "greeting"},
		Data:       map[string]string{"text": greeting},
	}
	if _, err := hub.Client().CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	deploy := federatedDeployment("web", 2, cm.Name)
	if _, err := hub.Client().AppsV1().Deployments(ns).Create(ctx, deploy, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// On the hub: two pods on the virtual node, Running, with an address.
	var hubPods []corev1.Pod
	poll(t, 2*time.Minute, "2 pods of the Deployment Running on node "+member.Name()+" with an IP", func(ctx context.Context) (bool, string) {
		list, err := hub.Client().CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil {
			return false, err.Error()
		}
		hubPods = list.Items
		if len(hubPods) != 2 {
			return false, describePods(hubPods)
		}
		for _, p := range hubPods {
			if p.Spec.NodeName != member.Name() || p.Status.Phase != corev1.PodRunning || p.Status.PodIP == "" {
				return false, describePods(hubPods)
			}
		}
		return true, ""
	})

	// In the member: the same pods, by their origin, on its containerd node.
	byUID := map[string]corev1.Pod{}
	t.Run("member runs the pods", func(t *testing.T) {
		pods, err := memberPods(ctx, ns)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pods {
			byUID[p.Labels[originUID]] = p
		}
		if len(pods) != 2 || len(byUID) != 2 {
			t.Fatalf("the member has %d pods of namespace %s, want 2 with distinct origin UIDs: %s", len(pods), ns, describePods(pods))
		}
		_, memberNet, _ := net.ParseCIDR(member.PodNetwork().CIDR)
		for _, hp := range hubPods {
			mp, ok := byUID[string(hp.UID)]
			if !ok {
				t.Errorf("hub pod %s (uid %s) has no pod in the member: %s", hp.Name, hp.UID, describePods(pods))
				continue
			}
			for label, want := range map[string]string{originCluster: hub.Name(), originNamespace: ns, originName: hp.Name, originNode: member.Name()} {
				if mp.Labels[label] != want {
					t.Errorf("member pod %s: label %s=%q, want %q", mp.Name, label, mp.Labels[label], want)
				}
			}
			if mp.Spec.NodeName != member.NodeName() || mp.Status.Phase != corev1.PodRunning {
				t.Errorf("member pod %s is not Running on the member's node %s: %s", mp.Name, member.NodeName(), describePod(&mp))
			}
			// The hub shows the address the member gave the pod.
			if hp.Status.PodIP != mp.Status.PodIP || !memberNet.Contains(net.ParseIP(mp.Status.PodIP)) {
				t.Errorf("hub pod %s has IP %q, member pod %s has %q (want it, in the member's %s)",
					hp.Name, hp.Status.PodIP, mp.Name, mp.Status.PodIP, member.PodNetwork().CIDR)
			}
		}
	})
	if len(byUID) == 0 {
		t.Fatal("nothing to follow in the member")
	}
	first := hubPods[0]
	firstInMember := byUID[string(first.UID)]

	t.Run("ConfigMap reaches the member before the pod", func(t *testing.T) {
		mcm, err := member.Client().CoreV1().ConfigMaps(firstInMember.Namespace).Get(ctx, cm.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("ConfigMap %s in the member (namespace %s): %v", cm.Name, firstInMember.Namespace, err)
		}
		if mcm.Labels[originCluster] != hub.Name() || mcm.Labels[originNamespace] != ns {
			t.Errorf("member ConfigMap labels %v lack the origin %s=%s, %s=%s", mcm.Labels, originCluster, hub.Name(), originNamespace, ns)
		}
		if mcm.Data["text"] != greeting {
			t.Errorf("member ConfigMap data %v, want text=%q", mcm.Data, greeting)
		}
		if mcm.CreationTimestamp.After(firstInMember.CreationTimestamp.Time) {
			t.Errorf("member ConfigMap made at %v, after the pod %s at %v", mcm.CreationTimestamp, firstInMember.Name, firstInMember.CreationTimestamp)
		}
	})

	t.Run("logs", func(t *testing.T) {
		// The container prints the greeting from its environment, then its
		// host name: the member pod's.
		want := "greeting=" + greeting + "\nhostname=" + firstInMember.Name + "\n"
		poll(t, 30*time.Second, "kubectl logs on the hub shows the member pod's output", func(context.Context) (bool, string) {
			out, err := kubectl(t, "-n", ns, "logs", first.Name)
			if err != nil {
				return false, err.Error()
			}
			return out == want, fmt.Sprintf("got %q, want %q", out, want)
		})
	})

	t.Run("exec", func(t *testing.T) {
		out, err := kubectl(t, "-n", ns, "exec", first.Name, "--", "sh", "-c", `echo "$GREETING"; hostname; echo err >&2`)
		if err != nil {
			t.Fatal(err)
		}
		if want := greeting + "\n" + firstInMember.Name + "\n"; out != want {
			t.Errorf("exec output %q, want %q", out, want)
		}
		// The command's exit code comes back through both clusters.
		_, err = kubectl(t, "-n", ns, "exec", first.Name, "--", "sh", "-c", "exit 7")
		if err == nil || !strings.Contains(err.Error(), "exit status 7") {
			t.Errorf("exec of exit 7: %v, want kubectl to exit 7", err)
		}
	})

	t.Run("ConfigMap change reaches the member", func(t *testing.T) {
		hcm, err := hub.Client().CoreV1().ConfigMaps(ns).Get(ctx, cm.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		hcm.Data["text"] = changed
		if _, err := hub.Client().CoreV1().ConfigMaps(ns).Update(ctx, hcm, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		poll(t, time.Minute, "the member's ConfigMap has the change", func(ctx context.Context) (bool, string) {
			mcm, err := member.Client().CoreV1().ConfigMaps(firstInMember.Namespace).Get(ctx, cm.Name, metav1.GetOptions{})
			if err != nil {
				return false, err.Error()
			}
			return mcm.Data["text"] == changed, fmt.Sprintf("data %v", mcm.Data)
		})
	})

	t.Run("deleting the Deployment deletes the member's pods", func(t *testing.T) {
		err := hub.Client().AppsV1().Deployments(ns).Delete(ctx, deploy.Name, metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationBackground)})
		if err != nil {
			t.Fatal(err)
		}
		poll(t, 2*time.Minute, "no pod of the Deployment left on the hub nor in the member", func(ctx context.Context) (bool, string) {
			onHub, err := hub.Client().CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
			if err != nil {
				return false, err.Error()
			}
			inMember, err := memberPods(ctx, ns)
			if err != nil {
				return false, err.Error()
			}
			return len(onHub.Items) == 0 && len(inMember) == 0,
				"hub: " + describePods(onHub.Items) + "; member: " + describePods(inMember)
		})
	})
}

// federatedDeployment is a Deployment of busybox pods for the member's
// virtual node, whose container prints GREETING (from the ConfigMap) and
// its host name, then waits to be stopped.
func federatedDeployment(name string, replicas int32, configMap string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	spec := corev1.PodSpec{
		TerminationGracePeriodSeconds: ptr.To[int64](2),
		Containers: []corev1.Container{{
			Name:            "main",
			Image:           hub.Image(),
			ImagePullPolicy: corev1.PullIfNotPresent,
			Command:         []string{"sh", "-c", `echo "greeting=$GREETING"; echo "hostname=$(hostname)"; trap 'exit 0' TERM; while sleep 1; do :; done`},
			Env: []corev1.EnvVar{{
				Name: "GREETING",
				ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
					LocalObjectReference: corev1.LocalObjectReference{Name: configMap},
					Key:                  "text",
				}},
			}},
		}},
	}
	toMember(&spec)
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       spec,
			},
		},
	}
}
