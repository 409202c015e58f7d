package podstatus

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
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

// A status that goes back to what the informer shows while another one is
// being written is written after it: the API server is to end with the
// newest status, not with the one in flight.
func TestStatusSetBackDuringAWriteIsWrittenAfterIt(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "p", UID: "u1"},
		Status: corev1.PodStatus{Phase: corev1.PodPending}}
	client := fake.NewClientset(pod)
	writing, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	client.PrependReactor("patch", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		once.Do(func() {
			close(writing)
			<-release
		})
		return false, nil, nil
	})
	m := New(client, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.Run(ctx, 1); close(done) }()
	defer func() { cancel(); <-done }()

	m.Set(pod, &corev1.PodStatus{Phase: corev1.PodRunning})
	<-writing
	m.Set(pod, &corev1.PodStatus{Phase: corev1.PodPending}) // what the informer still shows
	close(release)
	var phase corev1.PodPhase
	err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		got, err := client.CoreV1().Pods("default").Get(ctx, "p", metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		phase = got.Status.Phase
		return phase == corev1.PodPending && m.idle(), nil
	})
	if err != nil {
		t.Errorf("the API server ends with phase %s, want the newest status's Pending", phase)
	}
}

// Once the informer's copy of a pod shows the status written, the manager
// keeps no copy of its own.
func TestWrittenStatusIsDroppedOnceTheInformerShowsIt(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "p", UID: "u1"}}
	client := fake.NewClientset(pod)
	m := New(client, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.Run(ctx, 1); close(done) }()
	defer func() { cancel(); <-done }()

	running := &corev1.PodStatus{Phase: corev1.PodRunning}
	m.Set(pod, running)
	var seen *corev1.Pod
	err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		got, err := client.CoreV1().Pods("default").Get(ctx, "p", metav1.GetOptions{})
		seen = got
		return err == nil && got.Status.Phase == corev1.PodRunning && m.idle(), nil
	})
	if err != nil {
		t.Fatal("the status was not written")
	}
	m.Set(seen, running.DeepCopy())
	m.mu.Lock()
	_, kept := m.written[pod.UID]
	_, queued := m.pending[pod.UID]
	m.mu.Unlock()
	if kept || queued {
		t.Errorf("after the informer showed the status: kept a copy %v, queued it again %v", kept, queued)
	}
}

// idle says that nothing is pending or being written.
func (m *Manager) idle() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.pending) == 0 && m.queue.Len() == 0
}
