package agent

import (
	"context"
	"errors"
	"testing"
	"time"

	"google.golang.org/grpc"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// A client that goes away during an attach ends the runtime's session:
// the agent does not keep it until the container exits.
func TestAttachEndsWhenTheClientGoesAway(t *testing.T) {
	rt := &chattyRuntime{}
	reg := &nodeRegistry{}
	reg.add("node-a", onePod{}, rt)

	done := make(chan error, 1)
	go func() {
		done <- reg.AttachContainer(context.Background(), "default", "web", "main", nil, brokenWriter{}, nil, false, nil)
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("AttachContainer = %v, want nil: the client left, nothing to report", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the attach went on after its client's connection broke")
	}
	if rt.ctx == nil || rt.ctx.Err() == nil {
		t.Error("the runtime's Attach stream was not ended")
	}
}

// chattyRuntime's Attach streams output until its context ends.
type chattyRuntime struct {
	runtimev1.RuntimeClient
	ctx context.Context
}

func (r *chattyRuntime) Attach(ctx context.Context, _ ...grpc.CallOption) (runtimev1.Runtime_AttachClient, error) {
	r.ctx = ctx
	return chattyStream{ctx: ctx}, nil
}

type chattyStream struct {
	grpc.ClientStream
	ctx context.Context
}

func (chattyStream) Send(*runtimev1.AttachRequest) error { return nil }

func (s chattyStream) Recv() (*runtimev1.AttachResponse, error) {
	select {
	case <-s.ctx.Done():
		return nil, s.ctx.Err()
	case <-time.After(10 * time.Millisecond):
		return &runtimev1.AttachResponse{Response: &runtimev1.AttachResponse_Stdout{Stdout: []byte("tick\n")}}, nil
	}
}

type onePod struct{}

func (onePod) PodByName(namespace, name string) (*corev1.Pod, bool) {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, UID: "uid-1"}}, true
}

// brokenWriter is the stream of a client whose connection is gone.
type brokenWriter struct{}

func (brokenWriter) Write([]byte) (int, error) { return 0, errors.New("connection reset by peer") }
func (brokenWriter) Close() error              { return nil }
