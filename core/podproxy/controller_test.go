package podproxy

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fedlet/fedlet/plugins/sdk/sdktest"
)

// A pod is handed over with the ConfigMaps and Secrets it refers to, and
// the backend's status is written to it, on the virtual node's address.
func TestPodIsHandedOverWithItsObjectsAndReflected(t *testing.T) {
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "settings"}, Data: map[string]string{"k": "v"}}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "creds"}, Data: map[string][]byte{"p": []byte("x")}}
	pod := testPod("web")
	pod.Spec.Containers[0].EnvFrom = []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "settings"}}}}
	pod.Spec.Volumes = []corev1.Volume{{Name: "c", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "creds"}}}}
	h := newHarness(t, cm, secret, pod)
	h.start()

	got := h.waitForPhase("web", corev1.PodRunning)
	if got.Status.HostIP != sdktest.WholePodsNodeIP || len(got.Status.HostIPs) != 1 || got.Status.HostIPs[0].IP != sdktest.WholePodsNodeIP {
		t.Errorf("hostIP %q %v, want the virtual node's %s", got.Status.HostIP, got.Status.HostIPs, sdktest.WholePodsNodeIP)
	}
	if got.Status.PodIP == "" || len(got.Status.ContainerStatuses) != 1 || got.Status.ContainerStatuses[0].State.Running == nil {
		t.Errorf("the backend's pod IP and containers were not written: %+v", got.Status)
	}
	req, ok := h.backend.Request(testNode, string(pod.UID))
	if !ok {
		t.Fatal("the backend does not hold the pod")
	}
	if len(req.ConfigMaps) != 1 || len(req.Secrets) != 1 {
		t.Fatalf("handed over %d ConfigMaps and %d Secrets, want 1 and 1", len(req.ConfigMaps), len(req.Secrets))
	}
	var handed corev1.ConfigMap
	if err := handed.Unmarshal(req.ConfigMaps[0]); err != nil || handed.Name != "settings" || handed.Data["k"] != "v" {
		t.Errorf("handed-over ConfigMap %s %v (%v)", handed.Name, handed.Data, err)
	}
	if c := h.backend.Calls(string(pod.UID)); c.Creates != 1 {
		t.Errorf("%d creations, want 1", c.Creates)
	}

	// A changed ConfigMap is handed over again, to the pod it already runs.
	h.waitFor("the ConfigMap's watch", func() (bool, string) { return h.watchCount("configmaps") > 0, "" })
	cm.Data["k"] = "w"
	cm.ResourceVersion = "2"
	if _, err := h.client.CoreV1().ConfigMaps("default").Update(context.Background(), cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	h.waitFor("the new ConfigMap handed over", func() (bool, string) {
		req, _ := h.backend.Request(testNode, string(pod.UID))
		var cm corev1.ConfigMap
		if req == nil || len(req.ConfigMaps) != 1 || cm.Unmarshal(req.ConfigMaps[0]) != nil {
			return false, "no ConfigMap"
		}
		return cm.Data["k"] == "w", fmt.Sprintf("data %v", cm.Data)
	})
	if c := h.backend.Calls(string(pod.UID)); c.Creates != 1 || c.Updates == 0 {
		t.Errorf("calls %+v, want 1 creation and updates", c)
	}
}

// A pod waits for a ConfigMap it requires, with the kubelet's reason, and
// is handed over once the ConfigMap appears.
func TestPodWaitsForARequiredConfigMap(t *testing.T) {
	pod := testPod("needs-config")
	optional := true
	pod.Spec.Containers[0].Env = []corev1.EnvVar{
		{Name: "A", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "later"}, Key: "a"}}},
		{Name: "B", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "never"}, Key: "b", Optional: &optional}}},
	}
	h := newHarness(t, pod)
	h.start()

	h.waitFor("the pod waiting", func() (bool, string) {
		p := h.pod("needs-config")
		if len(p.Status.ContainerStatuses) != 1 || p.Status.ContainerStatuses[0].State.Waiting == nil {
			return false, fmt.Sprintf("%+v", p.Status)
		}
		w := p.Status.ContainerStatuses[0].State.Waiting
		return w.Reason == ReasonConfigError && w.Message == `configmap "later" not found`, fmt.Sprintf("%+v", w)
	})
	if _, held := h.backend.Request(testNode, string(pod.UID)); held {
		t.Fatal("a pod missing a required ConfigMap was handed over")
	}
	h.waitFor("the ConfigMap's watch", func() (bool, string) { return h.watchCount("configmaps") > 0, "" })
	h.create(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "later"}, Data: map[string]string{"a": "1"}})
	h.waitForPhase("needs-config", corev1.PodRunning)
	req, _ := h.backend.Request(testNode, string(pod.UID))
	if len(req.ConfigMaps) != 1 || len(req.Secrets) != 0 {
		t.Errorf("handed over %d ConfigMaps and %d Secrets, want 1 and none (the optional one is missing)", len(req.ConfigMaps), len(req.Secrets))
	}
}

// A backend that refuses a pod makes it wait with the backend's message
// and a Warning event; the pod is tried again until the backend takes it.
func TestBackendErrorBecomesThePodsStatusAndIsRetried(t *testing.T) {
	h := newHarness(t)
	h.backend.FailCreates(status.Error(codes.FailedPrecondition, "member-1 has no namespace default"))
	h.start()
	h.create(testPod("refused"))

	h.waitFor("the pod waiting with the backend's reason", func() (bool, string) {
		p := h.pod("refused")
		if len(p.Status.ContainerStatuses) != 1 || p.Status.ContainerStatuses[0].State.Waiting == nil {
			return false, fmt.Sprintf("%+v", p.Status)
		}
		w := p.Status.ContainerStatuses[0].State.Waiting
		return w.Reason == ReasonProviderFailed && w.Message == "member-1 has no namespace default", fmt.Sprintf("%+v", w)
	})
	h.waitForEvent("Warning", EventFailedCreate, "member-1 has no namespace default")
	if p := h.pod("refused"); p.Status.Phase != corev1.PodPending {
		t.Errorf("phase %s, want Pending", p.Status.Phase)
	}

	h.backend.FailCreates(nil)
	h.waitForPhase("refused", corev1.PodRunning)
}

// A deleted pod is deleted on the backend with what is left of its grace
// period; once the backend no longer has it, its final status is written
// and the pod object goes.
func TestDeletedPodIsDeletedOnTheBackendThenOnTheAPIServer(t *testing.T) {
	h := newHarness(t, testPod("doomed"))
	h.start()
	p := h.waitForPhase("doomed", corev1.PodRunning)

	grace := int64(30)
	when := metav1.NewTime(time.Now().Add(time.Duration(grace) * time.Second))
	p.DeletionTimestamp, p.DeletionGracePeriodSeconds = &when, &grace
	if _, err := h.client.CoreV1().Pods("default").Update(context.Background(), p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	h.waitFor("the pod object deleted", func() (bool, string) { return h.pod("doomed") == nil, "" })
	calls := h.backend.Calls(string(p.UID))
	if len(calls.DeleteGraces) != 1 || calls.DeleteGraces[0] < minGrace || calls.DeleteGraces[0] > grace {
		t.Errorf("DeletePod grace periods %v, want one within [%d, %d]", calls.DeleteGraces, minGrace, grace)
	}
	h.mu.Lock()
	final, ok := h.deleted["doomed"]
	h.mu.Unlock()
	if !ok || final.Phase != corev1.PodSucceeded {
		t.Errorf("status when deleted: %+v, want the final Succeeded (the backend's containers exited 0)", final)
	}
}

// A pod the backend runs that is gone from the API server (force-deleted,
// or deleted while the agent was down) is deleted at once; one it runs for
// a pod of the API server is adopted, not created again.
func TestAdoptsWhatTheBackendRunsAndDeletesOrphans(t *testing.T) {
	kept, orphan := testPod("kept"), testPod("orphan")
	h := newHarness(t, kept)
	h.seed(kept)
	h.seed(orphan)
	h.start()

	h.waitFor("the orphan deleted", func() (bool, string) {
		c := h.backend.Calls(string(orphan.UID))
		return slices.Equal(c.DeleteGraces, []int64{0}), fmt.Sprintf("%+v", c)
	})
	h.waitForPhase("kept", corev1.PodRunning)
	if c := h.backend.Calls(string(kept.UID)); c.Creates != 1 || len(c.DeleteGraces) != 0 {
		t.Errorf("the adopted pod's calls: %+v, want its one creation before the agent started, no deletion", c)
	}
}

// A pod the backend lost fails with the reason and is never recreated.
func TestLostPodFailsAndIsNotRecreated(t *testing.T) {
	h := newHarness(t, testPod("lost"))
	h.start()
	p := h.waitForPhase("lost", corev1.PodRunning)

	if err := h.backend.Lose(testNode, string(p.UID)); err != nil {
		t.Fatal(err)
	}
	failed := h.waitForPhase("lost", corev1.PodFailed)
	if failed.Status.Reason != ReasonPodLost || failed.Status.Message == "" {
		t.Errorf("reason %q message %q, want %s and why", failed.Status.Reason, failed.Status.Message, ReasonPodLost)
	}
	if cs := failed.Status.ContainerStatuses; len(cs) != 1 || cs[0].State.Terminated == nil || cs[0].Ready {
		t.Errorf("container statuses of the lost pod: %+v, want terminated and not ready", cs)
	}
	h.waitForEvent("Warning", ReasonPodLost)

	// Listed again (as after a plugin restart), and a later pod handed
	// over after that: the lost one is still not recreated.
	h.waitFor("the failure seen by the informer", func() (bool, string) {
		p, ok := h.ctrl.PodByName("default", "lost")
		return ok && p.Status.Phase == corev1.PodFailed, ""
	})
	h.ctrl.Resync()
	h.create(testPod("later"))
	h.waitForPhase("later", corev1.PodRunning)
	if c := h.backend.Calls(string(p.UID)); c.Creates != 1 {
		t.Errorf("the lost pod was created %d times, want once", c.Creates)
	}
}

// A pod the backend ran once (its status has a start time) and no longer
// lists when the agent starts was lost while nobody watched: it fails as
// lost and is not created again.
func TestPodGoneWhileUnwatchedIsLost(t *testing.T) {
	gone := testPod("gone")
	started := metav1.NewTime(time.Now().Add(-time.Minute))
	gone.Status.Phase, gone.Status.StartTime = corev1.PodRunning, &started
	h := newHarness(t, gone, testPod("new"))
	h.start()
	failed := h.waitForPhase("gone", corev1.PodFailed)
	if failed.Status.Reason != ReasonPodLost {
		t.Errorf("reason %q, want %s", failed.Status.Reason, ReasonPodLost)
	}
	h.waitForPhase("new", corev1.PodRunning)
	if c := h.backend.Calls(string(gone.UID)); c.Creates != 0 {
		t.Errorf("the pod gone while unwatched was created %d times, want never", c.Creates)
	}
}

// A pod force-deleted while the backend still stops it is deleted there at
// once, and forgotten when the backend no longer lists it.
func TestForceDeletionCutsTheGracePeriodShort(t *testing.T) {
	h := newHarness(t, testPod("slow"))
	h.start()
	p := h.waitForPhase("slow", corev1.PodRunning)
	h.backend.HoldDeletions(true)

	grace := int64(30)
	when := metav1.NewTime(time.Now().Add(time.Duration(grace) * time.Second))
	p.DeletionTimestamp, p.DeletionGracePeriodSeconds = &when, &grace
	if _, err := h.client.CoreV1().Pods("default").Update(context.Background(), p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	h.waitFor("the graceful deletion on the backend", func() (bool, string) {
		c := h.backend.Calls(string(p.UID))
		return len(c.DeleteGraces) == 1, fmt.Sprintf("%+v", c)
	})
	if h.pod("slow") == nil {
		t.Fatal("the pod object went while the backend still has the pod")
	}

	zero := int64(0)
	if err := h.client.CoreV1().Pods("default").Delete(context.Background(), "slow", metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		t.Fatal(err)
	}
	h.waitFor("the deletion cut short on the backend", func() (bool, string) {
		c := h.backend.Calls(string(p.UID))
		return len(c.DeleteGraces) == 2 && c.DeleteGraces[1] == 0, fmt.Sprintf("%+v", c)
	})
	h.backend.HoldDeletions(false)
	h.waitFor("the pod forgotten", func() (bool, string) {
		_, held := h.proxy.state.get(p.UID)
		return !held && !h.proxy.anyDeleting(), fmt.Sprintf("held %v", held)
	})
}

// What the backend records about a pod is recorded on the hub's pod.
func TestBackendEventsAreRecordedOnThePod(t *testing.T) {
	h := newHarness(t)
	h.start()
	h.create(testPod("web"))
	p := h.waitForPhase("web", corev1.PodRunning)
	// The events stream opens with the controller; an event recorded before
	// it is open is not replayed, so record until one arrives.
	h.waitFor("the backend's event on the pod", func() (bool, string) {
		h.backend.RecordEvent(testNode, string(p.UID), corev1.EventTypeWarning, "BackOff", "Back-off restarting failed container app")
		select {
		case e := <-h.events.Events:
			return e == "Warning BackOff Back-off restarting failed container app", e
		case <-time.After(100 * time.Millisecond):
			return false, "no event"
		}
	})
}
