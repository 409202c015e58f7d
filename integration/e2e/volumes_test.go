package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestVolumesOnTheNode: a pod's ConfigMap, Secret and emptyDir volumes and
// its service-account volume are made on the node and mounted: the files
// are there, read-only where they are the node's, a ConfigMap change
// reaches the running container, the token is the pod's own (the API
// server's TokenReview says so), and nothing is left once the pod is gone.
func TestVolumesOnTheNode(t *testing.T) {
	ns := namespace(t)
	ctx := context.Background()
	cms := env.Client().CoreV1().ConfigMaps(ns)
	if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "settings"}, Data: map[string]string{"mode": "fast"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "creds"}, Data: map[string][]byte{"password": []byte("s3cret")}}
	if _, err := env.Client().CoreV1().Secrets(ns).Create(ctx, secret, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod := busyboxPod("vols", "while true; do sleep 1; done", corev1.RestartPolicyAlways)
	pod.Spec.Volumes = []corev1.Volume{
		{Name: "settings", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "settings"}}}},
		{Name: "creds", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "creds"}}},
		{Name: "shared", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
	}
	main := &pod.Spec.Containers[0]
	main.VolumeMounts = []corev1.VolumeMount{
		{Name: "settings", MountPath: "/etc/settings"},
		{Name: "creds", MountPath: "/etc/creds"},
		{Name: "shared", MountPath: "/shared"},
	}
	writer := *main
	writer.Name = "writer"
	writer.Command = []string{"sh", "-c", "echo from-writer > /data/note; while true; do sleep 1; done"}
	writer.VolumeMounts = []corev1.VolumeMount{{Name: "shared", MountPath: "/data"}}
	pod.Spec.Containers = append(pod.Spec.Containers, writer)
	created := createPod(t, ns, pod)
	waitPod(t, ns, "vols", 2*time.Minute, "Running", phaseIs(corev1.PodRunning))

	cat := func(path string) string {
		t.Helper()
		out, err := kubectl(t, "-n", ns, "exec", "vols", "-c", "main", "--", "cat", path)
		if err != nil {
			t.Fatalf("cat %s: %v", path, err)
		}
		return out
	}
	for path, want := range map[string]string{"/etc/settings/mode": "fast", "/etc/creds/password": "s3cret", "/shared/note": "from-writer\n"} {
		if got := cat(path); got != want {
			t.Errorf("%s = %q, want %q", path, got, want)
		}
	}
	if _, err := kubectl(t, "-n", ns, "exec", "vols", "-c", "main", "--", "touch", "/etc/settings/new"); err == nil {
		t.Error("a ConfigMap volume is writable")
	}

	t.Run("service-account token", func(t *testing.T) {
		const dir = "/var/run/secrets/kubernetes.io/serviceaccount/"
		if got := cat(dir + "namespace"); got != ns {
			t.Errorf("namespace file %q, want %q", got, ns)
		}
		root, err := cms.Get(ctx, "kube-root-ca.crt", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := cat(dir + "ca.crt"); got != root.Data["ca.crt"] {
			t.Errorf("ca.crt is not the cluster's CA")
		}
		review, err := env.Client().AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: cat(dir + "token")}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		u := review.Status.User
		if !review.Status.Authenticated || u.Username != "system:serviceaccount:"+ns+":default" ||
			fmt.Sprint(u.Extra["authentication.kubernetes.io/pod-uid"]) != "["+string(created.UID)+"]" {
			t.Errorf("the token authenticates as %+v (%v, %s), want the pod's service account, bound to the pod", u, review.Status.Authenticated, review.Status.Error)
		}
	})

	t.Run("ConfigMap change reaches the container", func(t *testing.T) {
		cm, err := cms.Get(ctx, "settings", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cm.Data["mode"] = "slow"
		if _, err := cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(time.Minute)
		for cat("/etc/settings/mode") != "slow" {
			if time.Now().After(deadline) {
				t.Fatal("the running container never saw the ConfigMap's change")
			}
			time.Sleep(500 * time.Millisecond)
		}
	})

	t.Run("a missing ConfigMap makes the pod wait", func(t *testing.T) {
		waiting := busyboxPod("waits", "sleep 3600", corev1.RestartPolicyAlways)
		waiting.Spec.Volumes = []corev1.Volume{{Name: "later", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "later"}}}}}
		waiting.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "later", MountPath: "/later"}}
		createPod(t, ns, waiting)
		waitPod(t, ns, "waits", time.Minute, `waiting for configmap "later"`, func(p *corev1.Pod) bool {
			cs := p.Status.ContainerStatuses
			return len(cs) == 1 && cs[0].State.Waiting != nil && strings.Contains(cs[0].State.Waiting.Message, `configmap "later" not found`)
		})
		if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "later"}, Data: map[string]string{"k": "v"}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitPod(t, ns, "waits", time.Minute, "Running once the ConfigMap exists", phaseIs(corev1.PodRunning))
	})

	dir := filepath.Join(env.Paths().DataDir, "fedlet", "agent", "pods", string(created.UID))
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("the pod's volumes are not where the agent makes them: %v", err)
	}
	if err := env.Client().CoreV1().Pods(ns).Delete(ctx, "vols", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitGone(t, ns, "vols", time.Minute)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(dir); os.IsNotExist(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the pod's volumes are still on the node after it went: %s", dir)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestFSGroupSharesTheVolumes: a pod running as an unprivileged user with an
// fsGroup reads its Secret (mode 0400) through the group, writes to its
// emptyDir, and what it writes there belongs to the group, as on a kubelet.
func TestFSGroupSharesTheVolumes(t *testing.T) {
	ns := namespace(t)
	ctx := context.Background()
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "creds"}, Data: map[string][]byte{"password": []byte("s3cret")}}
	if _, err := env.Client().CoreV1().Secrets(ns).Create(ctx, secret, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod := busyboxPod("fsgroup", "id -G; cat /etc/creds/password; echo; echo x > /shared/made && stat -c 'made %g' /shared/made", corev1.RestartPolicyNever)
	user, group, fsGroup := int64(1000), int64(1000), int64(2000)
	owner := int32(0o400)
	pod.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsUser: &user, RunAsGroup: &group, FSGroup: &fsGroup}
	pod.Spec.Volumes = []corev1.Volume{
		{Name: "creds", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "creds", DefaultMode: &owner}}},
		{Name: "shared", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
	}
	pod.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{
		{Name: "creds", MountPath: "/etc/creds"},
		{Name: "shared", MountPath: "/shared"},
	}
	createPod(t, ns, pod)
	done := waitPod(t, ns, "fsgroup", 2*time.Minute, "finished", func(p *corev1.Pod) bool {
		return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
	})
	out, err := kubectl(t, "-n", ns, "logs", "fsgroup")
	if err != nil {
		t.Fatal(err)
	}
	if done.Status.Phase != corev1.PodSucceeded {
		t.Fatalf("the pod %s; its log:\n%s", describeStatus(done), out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !slices.Contains(strings.Fields(lines[0]), "2000") || lines[1] != "s3cret" || lines[2] != "made 2000" {
		t.Errorf("log %q; want the groups to hold 2000, the secret read, and the file made in the emptyDir owned by group 2000", out)
	}
}
