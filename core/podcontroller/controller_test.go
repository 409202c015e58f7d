package podcontroller

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/metadata"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"

	"github.com/fedlet/fedlet/core/podstatus"
	"github.com/fedlet/fedlet/core/runtimewatch"
)

// These tests run the controller with a strategy that records what it is
// asked, against client-go's fake clientset: they check the shared
// machinery, not a way of running pods.

const testNode = "node-1"

// event is a message of the fake runtime's stream: it names a pod.
type event struct{ uid types.UID }

// stream is the fake runtime's stream; it ends with the context it was
// opened with.
type stream struct {
	ctx    context.Context
	events chan *event
}

func (s *stream) Header() (metadata.MD, error) { return nil, nil }

func (s *stream) Recv() (*event, error) {
	select {
	case ev := <-s.events:
		return ev, nil
	case <-s.ctx.Done():
		return nil, s.ctx.Err()
	}
}

// recorder is a strategy that records its calls; sync, if set, decides
// what each sync does.
type recorder struct {
	events chan *event
	sync   func(ctx context.Context, uid types.UID, pod *corev1.Pod) (time.Duration, error)

	mu       sync.Mutex
	opened   int
	listed   int
	syncs    map[types.UID]int
	deleting map[types.UID]int
}

func newRecorder() *recorder {
	return &recorder{events: make(chan *event), syncs: map[types.UID]int{}, deleting: map[types.UID]int{}}
}

func (r *recorder) Sync(ctx context.Context, uid types.UID, pod *corev1.Pod) (time.Duration, error) {
	r.mu.Lock()
	r.syncs[uid]++
	r.mu.Unlock()
	if r.sync != nil {
		return r.sync(ctx, uid, pod)
	}
	return 0, nil
}

func (r *recorder) Deleting(uid types.UID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.deleting[uid]++
}

func (r *recorder) Run(ctx context.Context) { <-ctx.Done() }

func (r *recorder) Runtime() Runtime {
	return RuntimeWatch[event]{
		What: "event",
		Open: func(ctx context.Context) (runtimewatch.Stream[event], error) {
			r.mu.Lock()
			r.opened++
			r.mu.Unlock()
			return &stream{ctx: ctx, events: r.events}, nil
		},
		List: func(context.Context) ([]types.UID, error) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.listed++
			return nil, nil
		},
		Apply: func(ev *event) types.UID { return ev.uid },
	}
}

func (r *recorder) count(f func() int) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return f()
}

// start runs a controller of testNode with the strategy on client until the
// test ends.
func start(t *testing.T, client *fake.Clientset, s Strategy) *Controller {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	c := New(Config{Node: testNode, What: "pod", Workers: 2, MaxRetryDelay: 100 * time.Millisecond}, Deps{
		Client: client,
		Pods:   NodeInformers(client, testNode),
		Status: podstatus.New(client, log),
		Events: record.NewFakeRecorder(10),
		Log:    log,
	}, func(*Controller) Strategy { return s })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return c
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: never happened", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func testPod(name string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, UID: types.UID("uid-" + name)},
		Spec:       corev1.PodSpec{NodeName: testNode},
	}
}

// A sync that fails is tried again, with the pod, until it succeeds.
func TestFailingSyncIsRetried(t *testing.T) {
	pod := testPod("p")
	s := newRecorder()
	var mu sync.Mutex
	failures := 3
	s.sync = func(_ context.Context, _ types.UID, p *corev1.Pod) (time.Duration, error) {
		mu.Lock()
		defer mu.Unlock()
		if p == nil {
			return 0, errors.New("sync without its pod")
		}
		if failures > 0 {
			failures--
			return 0, errors.New("the runtime failed")
		}
		return 0, nil
	}
	start(t, fake.NewClientset(pod), s)
	waitFor(t, "a successful sync after three failures", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return failures == 0 && s.count(func() int { return s.syncs[pod.UID] }) >= 4
	})
}

// Resync ends the runtime watch's round: the stream is opened again and the
// runtime listed again, long before the minute of the periodic resync, and
// every pod of the node is synced again.
func TestResyncRelists(t *testing.T) {
	pod := testPod("p")
	s := newRecorder()
	c := start(t, fake.NewClientset(pod), s)
	waitFor(t, "the first listing", func() bool { return s.count(func() int { return s.listed }) == 1 })
	waitFor(t, "the pod synced", func() bool { return s.count(func() int { return s.syncs[pod.UID] }) >= 1 })
	synced := s.count(func() int { return s.syncs[pod.UID] })

	c.Resync()
	waitFor(t, "a second listing", func() bool { return s.count(func() int { return s.listed }) == 2 })
	if opened := s.count(func() int { return s.opened }); opened != 2 {
		t.Errorf("the stream was opened %d times, want 2 (once per round)", opened)
	}
	waitFor(t, "the pod synced again", func() bool { return s.count(func() int { return s.syncs[pod.UID] }) > synced })
}

// A message of the runtime's stream syncs the pod it names.
func TestRuntimeMessageSyncsItsPod(t *testing.T) {
	s := newRecorder()
	start(t, fake.NewClientset(), s)
	waitFor(t, "the first listing", func() bool { return s.count(func() int { return s.listed }) == 1 })
	s.events <- &event{uid: "uid-gone"}
	waitFor(t, "the named pod synced", func() bool { return s.count(func() int { return s.syncs["uid-gone"] }) == 1 })
}

// A pod's deletion cancels its sync in progress (a pull, a hook), tells
// the strategy, and the pod is synced again as deleted.
func TestDeletionCancelsTheSyncInProgress(t *testing.T) {
	pod := testPod("p")
	s := newRecorder()
	inSync := make(chan struct{}, 1)
	cancelled := make(chan error, 1)
	seenDeleted := make(chan struct{}, 1)
	s.sync = func(ctx context.Context, _ types.UID, p *corev1.Pod) (time.Duration, error) {
		if p.DeletionTimestamp != nil {
			select {
			case seenDeleted <- struct{}{}:
			default:
			}
			return 0, nil
		}
		select {
		case inSync <- struct{}{}:
		default:
		}
		select {
		case <-ctx.Done():
			cancelled <- ctx.Err()
		case <-time.After(30 * time.Second):
			cancelled <- nil
		}
		return 0, nil
	}
	client := fake.NewClientset(pod)
	start(t, client, s)
	select {
	case <-inSync:
	case <-time.After(10 * time.Second):
		t.Fatal("the pod was never synced")
	}

	deleted := pod.DeepCopy()
	now := metav1.Now()
	deleted.DeletionTimestamp = &now
	if _, err := client.CoreV1().Pods("default").Update(context.Background(), deleted, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-cancelled:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("the sync in progress ended with %v, want it cancelled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the sync in progress was not cancelled")
	}
	if n := s.count(func() int { return s.deleting[pod.UID] }); n == 0 {
		t.Error("the strategy was not told of the deletion")
	}
	select {
	case <-seenDeleted:
	case <-time.After(10 * time.Second):
		t.Fatal("the deleted pod was not synced again")
	}
}
