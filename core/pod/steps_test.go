package pod

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/record"

	"github.com/fedlet/fedlet/core/podcontroller"
	"github.com/fedlet/fedlet/core/podstatus"
	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// unavailableRuntime refuses the container watch, as a plugin that is
// restarting does; no other call is made here.
type unavailableRuntime struct{ runtimev1.RuntimeClient }

func (unavailableRuntime) WatchContainers(context.Context, *runtimev1.WatchContainersRequest, ...grpc.CallOption) (grpc.ServerStreamingClient[runtimev1.ContainerStatus], error) {
	return nil, status.Error(codes.Unavailable, "restarting")
}

// Two nodes' controllers made from the agent's one cluster-wide factory
// share one Services informer: the Services are listed and watched once,
// while each node lists and watches its own pods.
func TestNodesShareOneServicesInformer(t *testing.T) {
	client := fake.NewClientset()
	var mu sync.Mutex
	calls := map[string]int{} // by verb and resource
	count := func(a k8stesting.Action) {
		mu.Lock()
		defer mu.Unlock()
		calls[a.GetVerb()+" "+a.GetResource().Resource]++
	}
	client.PrependReactor("list", "*", func(a k8stesting.Action) (bool, runtime.Object, error) { count(a); return false, nil, nil })
	client.PrependWatchReactor("*", func(a k8stesting.Action) (bool, watch.Interface, error) { count(a); return false, nil, nil })
	calledTimes := func(what string) int {
		mu.Lock()
		defer mu.Unlock()
		return calls[what]
	}

	log := slog.New(slog.DiscardHandler)
	statuses := podstatus.New(client, log)
	cluster := podcontroller.ClusterInformers(client)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait(); cluster.Shutdown() }()
	cluster.Start(ctx.Done())
	for _, node := range []string{"a", "b"} {
		c := New(Config{Node: node}, podcontroller.Deps{
			Client:  client,
			Pods:    podcontroller.NodeInformers(client, node),
			Runtime: unavailableRuntime{},
			Status:  statuses,
			Events:  record.NewFakeRecorder(10),
			Log:     log,
		}, cluster)
		wg.Go(func() { c.Run(ctx) })
	}
	deadline := time.Now().Add(10 * time.Second)
	for calledTimes("watch pods") < 2 || calledTimes("watch services") < 1 {
		if time.Now().After(deadline) {
			t.Fatalf("the informers never watched: pods %d times, services %d times", calledTimes("watch pods"), calledTimes("watch services"))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := calledTimes("list pods"); n != 2 {
		t.Errorf("pods listed %d times, want once per node", n)
	}
	if n, m := calledTimes("list services"), calledTimes("watch services"); n != 1 || m != 1 {
		t.Errorf("Services listed %d and watched %d times, want once for both nodes", n, m)
	}
}
