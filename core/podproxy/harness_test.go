package podproxy

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	ktypes "k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/record"

	"github.com/fedlet/fedlet/core/podcontroller"
	"github.com/fedlet/fedlet/core/podstatus"
	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
	"github.com/fedlet/fedlet/plugins/sdk/sdktest"
)

// These tests run the controller against the in-memory whole-pod backend
// over real gRPC, and a fake API server (client-go's fake clientset): they
// check the controller's decisions. That whole pods really run in a member
// cluster is for the end-to-end tests with two real clusters.

const testNode = "member-1"

type harness struct {
	t        *testing.T
	client   *fake.Clientset
	backend  *sdktest.WholePods
	events   *record.FakeRecorder
	ctrl     *podcontroller.Controller
	proxy    *Proxy
	statuses *podstatus.Manager

	mu      sync.Mutex
	watches map[string]int // watches opened, by resource
	// deleted records each pod's status at the moment it was deleted.
	deleted map[string]corev1.PodStatus
}

// newHarness serves a WholePods for testNode and builds a controller on it
// and on a fake clientset holding objs; start runs it.
func newHarness(t *testing.T, objs ...runtime.Object) *harness {
	t.Helper()
	h := &harness{
		t:       t,
		client:  fake.NewClientset(objs...),
		backend: sdktest.NewWholePods("memory-cluster", "1.0"),
		events:  record.NewFakeRecorder(100),
		watches: map[string]int{},
		deleted: map[string]corev1.PodStatus{},
	}
	if _, err := h.backend.Configure(t.Context(), &runtimev1.ConfigureRequest{Nodes: []string{testNode}}); err != nil {
		t.Fatal(err)
	}
	// The fake API server does not replay what happened between an
	// informer's list and its watch: tests wait for the watch to be open.
	h.client.PrependWatchReactor("*", func(a k8stesting.Action) (bool, watch.Interface, error) {
		h.mu.Lock()
		h.watches[a.GetResource().Resource]++
		h.mu.Unlock()
		return false, nil, nil
	})
	h.client.PrependReactor("delete", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		d := a.(k8stesting.DeleteAction)
		obj, err := h.client.Tracker().Get(d.GetResource(), d.GetNamespace(), d.GetName())
		if err == nil {
			h.mu.Lock()
			h.deleted[d.GetName()] = obj.(*corev1.Pod).Status
			h.mu.Unlock()
		}
		return false, nil, nil
	})

	sock := filepath.Join(t.TempDir(), "runtime.sock")
	lis, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	server := grpc.NewServer()
	runtimev1.RegisterRuntimeServer(server, h.backend)
	go func() { _ = server.Serve(lis) }()
	t.Cleanup(server.Stop)
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })

	h.statuses = podstatus.New(h.client, slog.New(slog.DiscardHandler))
	h.ctrl = New(testNode, podcontroller.Deps{
		Client:  h.client,
		Pods:    podcontroller.NodeInformers(h.client, testNode),
		Runtime: runtimev1.NewRuntimeClient(conn),
		Status:  h.statuses,
		Events:  h.events,
		Log:     slog.New(slog.DiscardHandler),
	})
	h.proxy = h.ctrl.Strategy().(*Proxy)
	return h
}

// start runs the controller until the test ends, and waits for its pod
// watch to be open.
func (h *harness) start() {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { h.statuses.Run(ctx, 2) })
	wg.Go(func() { h.ctrl.Run(ctx) })
	h.t.Cleanup(func() { cancel(); wg.Wait() })
	h.waitFor("the pod watch", func() (bool, string) { return h.watchCount("pods") > 0, "" })
}

func (h *harness) watchCount(resource string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.watches[resource]
}

// waitFor polls cond until it holds; it fails the test, with cond's last
// explanation, when it never does.
func (h *harness) waitFor(what string, cond func() (bool, string)) {
	h.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("%s: never happened (%s)", what, why)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// pod returns the pod as the API server has it, nil once it is gone.
func (h *harness) pod(name string) *corev1.Pod {
	p, err := h.client.CoreV1().Pods("default").Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		return nil
	}
	return p
}

// waitForPhase waits until the pod's status has the phase.
func (h *harness) waitForPhase(name string, phase corev1.PodPhase) *corev1.Pod {
	h.t.Helper()
	var p *corev1.Pod
	h.waitFor("pod "+name+" "+string(phase), func() (bool, string) {
		p = h.pod(name)
		if p == nil {
			return false, "no pod"
		}
		return p.Status.Phase == phase, fmt.Sprintf("phase %q, status %+v", p.Status.Phase, p.Status)
	})
	return p
}

// waitForEvent waits for an event whose text holds each of parts.
func (h *harness) waitForEvent(parts ...string) string {
	h.t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case ev := <-h.events.Events:
			match := true
			for _, p := range parts {
				match = match && strings.Contains(ev, p)
			}
			if match {
				return ev
			}
		case <-deadline:
			h.t.Fatalf("no event with %q", parts)
		}
	}
}

func (h *harness) create(obj runtime.Object) {
	h.t.Helper()
	var err error
	ctx := context.Background()
	switch o := obj.(type) {
	case *corev1.Pod:
		_, err = h.client.CoreV1().Pods(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
	case *corev1.ConfigMap:
		_, err = h.client.CoreV1().ConfigMaps(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
	case *corev1.Secret:
		_, err = h.client.CoreV1().Secrets(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
	default:
		err = fmt.Errorf("cannot create %T", obj)
	}
	if err != nil {
		h.t.Fatal(err)
	}
}

// testPod is a pod bound to testNode.
func testPod(name string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, UID: ktypes.UID("uid-" + name)},
		Spec: corev1.PodSpec{
			NodeName:   testNode,
			Containers: []corev1.Container{{Name: "app", Image: "busybox"}},
		},
		Status: corev1.PodStatus{
			Phase:      corev1.PodPending,
			Conditions: []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionTrue}},
		},
	}
}

// seed makes the backend run the pod as if an earlier agent had handed it over.
func (h *harness) seed(pod *corev1.Pod) {
	h.t.Helper()
	data, err := pod.Marshal()
	if err != nil {
		h.t.Fatal(err)
	}
	if _, err := h.backend.CreatePod(context.Background(), &runtimev1.CreatePodRequest{Node: testNode, PodObject: data}); err != nil {
		h.t.Fatal(err)
	}
}
