package sdk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// RequestRules enforces the protocols' request rules in front of a plugin,
// as CNI's skel does for CNI plugins: a call for a node the plugin does not
// serve, or whose request lacks a field the protocol requires, or a stream
// whose first message is not its start, is refused with the protocol's
// code and never reaches the plugin. The plugin's own checks are left for
// what only it can judge (whether a name suits its backend, whether a
// container exists).
//
// The rules, by call:
//
//   - every call but Describe and Configure names a node: without one it
//     fails with InvalidArgument ("node: must be set"); before the first
//     successful Configure with NotConfigured (FailedPrecondition); for a
//     node Configure did not name with NodeNotServed (NotFound);
//   - Configure's nodes must not be empty names (InvalidArgument); once
//     Configure succeeds they are the nodes served (see Nodes.Configure);
//   - the pod's UID, and the names the protocol requires, must be set
//     (InvalidArgument naming the field): RunSandbox pod.uid and pod.name;
//     RemoveSandbox pod_uid; StartContainer pod.uid, container.name and
//     container.image; StopContainer and RemoveContainer pod_uid and name;
//     ContainerLogs pod_uid and container; PullImage image; CreatePod
//     pod_object; DeletePod pod.uid; the network's Add, Del and Check
//     attachment.container_id and attachment.ifname, and Add netns_path;
//   - the first message of Exec, Attach and PortForward must be their
//     start (InvalidArgument "start: ..."), which names the node, the pod
//     UID and, for Exec and Attach, the container; Exec's command must not
//     be empty and PortForward's port must be 1 to 65535.
//
// One RequestRules guards one gRPC server, that is one plugin process:
// ServeRuntime and ServeNetwork install one; an in-process test harness
// installs its own with ServerOptions.
type RequestRules struct {
	nodes Nodes
}

// NewRequestRules returns rules that serve no node until a Configure call
// passes them (or Nodes().Configure is called).
func NewRequestRules() *RequestRules {
	return &RequestRules{}
}

// Nodes is the set of nodes the rules let through, learned from the
// Configure calls that pass them.
func (r *RequestRules) Nodes() *Nodes {
	return &r.nodes
}

// ServerOptions returns the gRPC server options that enforce the rules:
// a unary and a stream interceptor, chained before any the caller adds.
// A nil *RequestRules returns none.
//
//	server := grpc.NewServer(sdk.NewRequestRules().ServerOptions()...)
//	runtimev1.RegisterRuntimeServer(server, myRuntime)
func (r *RequestRules) ServerOptions() []grpc.ServerOption {
	if r == nil {
		return nil
	}
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(r.unary),
		grpc.ChainStreamInterceptor(r.stream),
	}
}

// unary checks a unary call's request, and learns the nodes of a Configure
// that succeeded.
func (r *RequestRules) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	c, ok := compiled[info.FullMethod]
	msg, isProto := req.(proto.Message)
	if !ok || !isProto {
		return handler(ctx, req)
	}
	if err := r.check(c, msg.ProtoReflect()); err != nil {
		return nil, err
	}
	resp, err := handler(ctx, req)
	if err == nil && c.nodes != nil {
		r.nodes.Configure(c.nodeNames(msg.ProtoReflect()))
	}
	return resp, err
}

// stream reads a stream's first message (a server stream's request, a
// bidirectional stream's start) and checks it before the plugin's handler
// runs; the handler then receives it as its first message.
func (r *RequestRules) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	c, ok := compiled[info.FullMethod]
	if !ok {
		return handler(srv, ss)
	}
	first := c.input.New().Interface()
	if err := ss.RecvMsg(first); err != nil {
		if errors.Is(err, io.EOF) {
			// The caller closed its side without a request.
			return c.firstMissing()
		}
		return err
	}
	if err := r.check(c, first.ProtoReflect()); err != nil {
		return err
	}
	return handler(srv, &replayStream{ServerStream: ss, first: first})
}

// replayStream hands the message the rules read as the first one received.
type replayStream struct {
	grpc.ServerStream
	first proto.Message
}

func (s *replayStream) RecvMsg(m any) error {
	if s.first == nil {
		return s.ServerStream.RecvMsg(m)
	}
	first := s.first
	s.first = nil
	dst, ok := m.(proto.Message)
	if !ok {
		return fmt.Errorf("request rules: receive into %T, not a protobuf message", m)
	}
	proto.Reset(dst)
	proto.Merge(dst, first)
	return nil
}

// check applies c to a request, in the order the protocol's answers are
// most useful in: the first message, the node, then the other fields.
func (r *RequestRules) check(c *compiledRule, req protoreflect.Message) error {
	if c.first != nil {
		if !req.Has(c.first) {
			return c.firstMissing()
		}
		req = req.Get(c.first).Message()
	}
	if c.node != nil {
		if err := r.nodes.Check(req.Get(c.node).String()); err != nil {
			return err
		}
	}
	for _, f := range c.required {
		if !f.isSet(req) {
			return InvalidArgument(f.name, "must be set")
		}
	}
	if c.port != nil {
		if p := c.port.value(req).Int(); p < 1 || p > 65535 {
			return InvalidArgument(c.port.name, "must be between 1 and 65535")
		}
	}
	if c.nodes != nil {
		for i, n := range c.nodeNames(req) {
			if n == "" {
				return InvalidArgument(c.nodes.name+"["+strconv.Itoa(i)+"]", "must not be empty")
			}
		}
	}
	return nil
}

// WithoutRequestRules makes ServeRuntime and ServeNetwork serve the
// implementation without RequestRules: every request reaches it as the
// host sent it, and it answers for the protocol's rules itself. It is for
// plugins that break the rules on purpose, as those with which the
// conformance kit's own tests check that the kit reports what a plugin gets
// wrong.
func WithoutRequestRules() ServeOption {
	return func(c *serveConfig) { c.noRequestRules = true }
}

// requestRules are the rules serve installs; nil for none.
func (c *serveConfig) requestRules() *RequestRules {
	if c.noRequestRules {
		return nil
	}
	return NewRequestRules()
}
