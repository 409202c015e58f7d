package podcontroller

import (
	"context"
	"log/slog"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
)

// A pod asking for a missing ConfigMap gets a NotFound naming it, and is
// told when the ConfigMap appears; once no pod refers to it, its watch ends.
func TestPodObjectsWatchWhatPodsAskFor(t *testing.T) {
	client := fake.NewClientset()
	changed := make(chan types.UID, 16)
	o := NewObjects(client, func(uid types.UID) { changed <- uid }, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { o.Run(ctx); close(stopped) }()
	defer func() { cancel(); <-stopped }()
	for !o.started() {
		time.Sleep(time.Millisecond)
	}

	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "u1"}}
	_, err := o.ConfigMap(ctx, pod, "cfg")
	if !apierrors.IsNotFound(err) || err.Error() != `configmap "cfg" not found` {
		t.Fatalf("missing ConfigMap: %v", err)
	}
	if o.watchCount() != 1 {
		t.Fatalf("%d watches, want 1", o.watchCount())
	}
	// Its watch has listed it (nothing yet): the first notice may be that.
	_, err = client.CoreV1().ConfigMaps("ns").Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "cfg", Namespace: "ns"}, Data: map[string]string{"k": "v"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.After(10 * time.Second)
	for {
		cm, err := o.ConfigMap(ctx, pod, "cfg")
		if err == nil && cm.Data["k"] == "v" {
			break
		}
		select {
		case uid := <-changed:
			if uid != "u1" {
				t.Fatalf("told %s", uid)
			}
		case <-deadline:
			t.Fatalf("the ConfigMap never became visible: %v", err)
		}
	}

	o.Release("u1")
	if o.watchCount() != 0 {
		t.Errorf("%d watches after the only pod is released", o.watchCount())
	}
}

func (o *Objects) watchCount() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.watches)
}

func (o *Objects) started() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.ctx != nil
}
