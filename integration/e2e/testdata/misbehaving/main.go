// Command misbehaving is the containerd runtime plugin with faults on demand,
// for the end-to-end test of a plugin that passes its health checks but
// hangs calls or answers garbage. A pod asks for a fault by its names; every
// other call is the containerd backend's:
//
//	an image whose name holds "hang-pull"  PullImage answers nothing until the call ends
//	a container named "hang-start"         StartContainer answers nothing until the call ends
//	a container named "garbage-start"      StartContainer answers bytes that are no protobuf message
//	a container named "wrong-answer"       StartContainer answers the status of a container nobody asked for
//
// The faulty calls start nothing, so nothing is left behind in containerd.
package main

import (
	"context"
	"os"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
	"github.com/fedlet/fedlet/plugins/runtime/containerd"
	"github.com/fedlet/fedlet/plugins/sdk"
)

const (
	hangPull     = "hang-pull"
	hangStart    = "hang-start"
	garbageStart = "garbage-start"
	wrongAnswer  = "wrong-answer"
)

type misbehaving struct {
	*containerd.Backend
}

func (m misbehaving) PullImage(ctx context.Context, req *runtimev1.PullImageRequest) (*runtimev1.PullImageResponse, error) {
	if strings.Contains(req.GetImage(), hangPull) {
		return nil, hang(ctx)
	}
	return m.Backend.PullImage(ctx, req)
}

func (m misbehaving) StartContainer(ctx context.Context, req *runtimev1.StartContainerRequest) (*runtimev1.ContainerStatus, error) {
	switch name := req.GetContainer().GetName(); name {
	case hangStart:
		return nil, hang(ctx)
	case garbageStart:
		// garbling turns this answer into garbage on the wire.
		return &runtimev1.ContainerStatus{Pod: req.GetPod(), Name: name, Attempt: req.GetAttempt()}, nil
	case wrongAnswer:
		return &runtimev1.ContainerStatus{
			Pod:     &runtimev1.PodRef{Uid: "not-" + req.GetPod().GetUid(), Namespace: "elsewhere", Name: "someone-else"},
			Name:    "someone-else",
			Attempt: req.GetAttempt() + 7,
			Id:      "no-such-container",
			State:   runtimev1.ContainerState(42),
		}, nil
	}
	return m.Backend.StartContainer(ctx, req)
}

// hang answers nothing until the caller gives up.
func hang(ctx context.Context) error {
	<-ctx.Done()
	return status.FromContextError(ctx.Err()).Err()
}

// garbling is the protobuf codec, but for the answer of a garbage-start
// container, which it replaces with bytes that do not decode.
type garbling struct{ encoding.CodecV2 }

func (g garbling) Marshal(v any) (mem.BufferSlice, error) {
	if st, ok := v.(*runtimev1.ContainerStatus); ok && st.GetName() == garbageStart {
		// Field number 0 is never valid.
		return mem.BufferSlice{mem.SliceBuffer([]byte("\x07garbage"))}, nil
	}
	return g.CodecV2.Marshal(v)
}

func main() {
	if containerd.IsLogDriver(os.Args) {
		containerd.RunLogDriver(os.Args) // does not return
	}
	b := containerd.New(containerd.Options{})
	defer b.Close()
	sdk.ServeRuntime(misbehaving{b}, sdk.WithServerOptions(grpc.ForceServerCodecV2(garbling{encoding.GetCodecV2(proto.Name)})))
}
