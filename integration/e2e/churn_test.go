package e2e

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
)

func TestDeploymentScalesAndHostFollows(t *testing.T) {
	ns := namespace(t)
	labels := map[string]string{"app": "web"}
	deploy := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](0),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       busyboxPod("", "sleep 3600", corev1.RestartPolicyAlways).Spec,
			},
		},
	}
	deployments := env.Client().AppsV1().Deployments(ns)
	if _, err := deployments.Create(context.Background(), deploy, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, replicas := range []int32{0, 5, 1} {
		// The deployment controller writes the object too: retry on conflict.
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			scale, err := deployments.GetScale(context.Background(), "web", metav1.GetOptions{})
			if err != nil {
				return err
			}
			scale.Spec.Replicas = replicas
			_, err = deployments.UpdateScale(context.Background(), "web", scale, metav1.UpdateOptions{})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, 2*time.Minute, fmt.Sprintf("%d pods running on the host", replicas), func() (bool, string) {
			pods := podsOnNode(t, ns)
			running, tasks := 0, 0
			for _, p := range pods {
				if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
					running++
				}
				tasks += inspectHost(t, string(p.UID)).runningTasks
			}
			state := fmt.Sprintf("%d pods, %d running, %d running tasks", len(pods), running, tasks)
			return len(pods) == int(replicas) && running == int(replicas) && tasks == int(replicas), state
		})
	}
}

// TestPluginKilledDuringChurn kills the runtime plugin with SIGKILL while
// pods are being created and deleted: the agent restarts it, every pod
// converges, and no container is started twice or left behind.
func TestPluginKilledDuringChurn(t *testing.T) {
	ns := namespace(t)
	const total, deleted = 50, 15
	uids := map[string]string{}
	oldPID := pluginPID(t)
	if oldPID == 0 {
		t.Fatal("no runtime plugin process found")
	}
	for i := range total {
		name := fmt.Sprintf("churn-%02d", i)
		p := busyboxPod(name, "sleep 3600", corev1.RestartPolicyAlways)
		p.Spec.TerminationGracePeriodSeconds = ptr.To[int64](1)
		uids[name] = string(createPod(t, ns, p).UID)
		switch i {
		case 20:
			if err := syscall.Kill(oldPID, syscall.SIGKILL); err != nil {
				t.Fatalf("kill -9 the plugin: %v", err)
			}
		case 30:
			for j := range deleted {
				name := fmt.Sprintf("churn-%02d", j)
				if err := env.Client().CoreV1().Pods(ns).Delete(context.Background(), name, metav1.DeleteOptions{}); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	waitFor(t, 3*time.Minute, "every pod converged", func() (bool, string) {
		pods := podsOnNode(t, ns)
		running := 0
		var others []string
		for _, p := range pods {
			if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
				running++
			} else {
				others = append(others, p.Name+": "+describeStatus(&p))
			}
		}
		return len(pods) == total-deleted && running == total-deleted, fmt.Sprintf("%d pods, %d running; the others: %v", len(pods), running, others)
	})
	if newPID := pluginPID(t); newPID == 0 || newPID == oldPID {
		t.Errorf("plugin pid %d after kill -9 of %d: not restarted", newPID, oldPID)
	}
	for _, p := range podsOnNode(t, ns) {
		if p.Status.ContainerStatuses[0].RestartCount != 0 {
			t.Errorf("pod %s: restartCount %d, want 0", p.Name, p.Status.ContainerStatuses[0].RestartCount)
		}
		// One sandbox record and one container, one task: started once.
		if h := inspectHost(t, string(p.UID)); h.containers != 2 || h.tasks != 1 || h.runningTasks != 1 {
			t.Errorf("pod %s: host holds %+v, want 2 containers (sandbox, main) and 1 running task", p.Name, h)
		}
	}
	for j := range deleted {
		name := fmt.Sprintf("churn-%02d", j)
		if h := inspectHost(t, uids[name]); h != (hostState{}) {
			t.Errorf("deleted pod %s: host still holds %+v", name, h)
		}
	}
}

// waitFor polls check until it holds, and fails with its last description.
func waitFor(t *testing.T, timeout time.Duration, what string, check func() (bool, string)) {
	t.Helper()
	var state string
	err := wait.PollUntilContextTimeout(context.Background(), 250*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
		var ok bool
		ok, state = check()
		return ok, nil
	})
	if err != nil {
		t.Fatalf("not %s within %s: %s", what, timeout, state)
	}
}
