package podstatus

import (
	"context"
	"log/slog"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// A status set again while it is being written is not written twice: the
// agent computes the same status again as soon as the runtime reports the
// start that its own call already reported.
func TestSameStatusSetDuringItsWriteIsNotQueuedAgain(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "p", UID: "u1"}}
	client := fake.NewClientset(pod)
	writing, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	client.PrependReactor("patch", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		once.Do(func() { close(writing) })
		<-release
		return false, nil, nil // the tracker applies it
	})
	m := New(client, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.Run(ctx, 1); close(done) }()
	defer func() { cancel(); <-done }()
	defer close(release)

	running := &corev1.PodStatus{Phase: corev1.PodRunning}
	m.Set(pod, running)
	<-writing
	m.Set(pod, running.DeepCopy())
	m.mu.Lock()
	_, queued := m.pending[pod.UID]
	m.mu.Unlock()
	if queued {
		t.Error("the status being written was queued to be written again")
	}
}
