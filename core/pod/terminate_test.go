package pod

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"google.golang.org/grpc"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"

	"github.com/fedlet/fedlet/core/podcontroller"
	"github.com/fedlet/fedlet/core/podstatus"
	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// removingRuntime answers RemoveSandbox; no other call is made here.
type removingRuntime struct{ runtimev1.RuntimeClient }

func (removingRuntime) RemoveSandbox(context.Context, *runtimev1.RemoveSandboxRequest, ...grpc.CallOption) (*runtimev1.RemoveSandboxResponse, error) {
	return &runtimev1.RemoveSandboxResponse{}, nil
}

// A terminated pod whose sandbox is gone stays marked as terminating while
// its object exists (the syncs its last status causes must not terminate
// it again: a second status write and delete for every pod), and is
// forgotten once the object is gone.
func TestTerminatedPodStaysTerminatingUntilItsObjectIsGone(t *testing.T) {
	client := fake.NewClientset()
	log := slog.New(slog.DiscardHandler)
	pods := podcontroller.NodeInformers(client, "n")
	ctrl := New(Config{Node: "n"}, podcontroller.Deps{
		Client: client, Pods: pods, Runtime: removingRuntime{},
		Status: podstatus.New(client, log), Events: record.NewFakeRecorder(10), Log: log,
	}, podcontroller.ClusterInformers(client))
	c := ctrl.Strategy().(*Steps)
	informer := pods.Core().V1().Pods().Informer()
	now := metav1.NewTime(time.Now())
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p", UID: "u1", DeletionTimestamp: &now}}
	if err := informer.GetIndexer().Add(pod); err != nil {
		t.Fatal(err)
	}
	c.terminations.terminating[pod.UID] = true

	if err := c.removeSandbox(t.Context(), pod.UID); err != nil {
		t.Fatal(err)
	}
	if !c.terminations.terminating[pod.UID] {
		t.Error("the pod's sandbox is gone and its object is not: it is no longer marked terminating, so it would be terminated again")
	}

	if err := informer.GetIndexer().Delete(pod); err != nil {
		t.Fatal(err)
	}
	c.forget(pod.UID)
	if c.terminations.terminating[pod.UID] {
		t.Error("the pod's object is gone, and it is still marked terminating")
	}
}
