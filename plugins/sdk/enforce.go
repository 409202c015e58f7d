package sdk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
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

// compiledRule is a rule resolved against its request's descriptor.
type compiledRule struct {
	method   string // "Exec"
	input    protoreflect.MessageType
	first    protoreflect.FieldDescriptor
	node     protoreflect.FieldDescriptor
	required []fieldPath
	port     *fieldPath
	nodes    *fieldPath
}

func (c *compiledRule) firstMissing() error {
	if c.first == nil {
		return InvalidArgument("request", "the call carries none")
	}
	start := string(c.first.Message().Name())
	article := "a"
	if strings.ContainsRune("AEIOU", rune(start[0])) {
		article = "an"
	}
	return InvalidArgument(string(c.first.Name()), fmt.Sprintf("the first message of %s must be %s %s", c.method, article, start))
}

func (c *compiledRule) nodeNames(req protoreflect.Message) []string {
	list := c.nodes.value(req).List()
	names := make([]string, list.Len())
	for i := range names {
		names[i] = list.Get(i).String()
	}
	return names
}

// fieldPath is a field reached through singular message fields.
type fieldPath struct {
	name   string // as written in the rule: "pod.uid"
	fields []protoreflect.FieldDescriptor
}

// value is the field's value, the default when it or a message on its way
// is unset.
func (p *fieldPath) value(m protoreflect.Message) protoreflect.Value {
	last := len(p.fields) - 1
	for _, f := range p.fields[:last] {
		m = m.Get(f).Message()
	}
	return m.Get(p.fields[last])
}

func (p *fieldPath) isSet(m protoreflect.Message) bool {
	last := len(p.fields) - 1
	for _, f := range p.fields[:last] {
		if !m.Has(f) {
			return false
		}
		m = m.Get(f).Message()
	}
	f := p.fields[last]
	switch {
	case f.IsList():
		return m.Get(f).List().Len() > 0
	case f.IsMap():
		return m.Get(f).Map().Len() > 0
	case f.Kind() == protoreflect.MessageKind, f.Kind() == protoreflect.GroupKind:
		return m.Has(f)
	case f.Kind() == protoreflect.StringKind:
		return m.Get(f).String() != ""
	case f.Kind() == protoreflect.BytesKind:
		return len(m.Get(f).Bytes()) > 0
	}
	return m.Has(f)
}

// compiled is rules resolved once, at start: a rule that names a field its
// request does not have is a mistake in this package, and panics.
var compiled = compileRules(rules)

func compileRules(rules map[string]rule) map[string]*compiledRule {
	out := make(map[string]*compiledRule, len(rules))
	for method, r := range rules {
		c, err := compileRule(method, r)
		if err != nil {
			panic(fmt.Sprintf("sdk request rules: %s: %v", method, err))
		}
		out[method] = c
	}
	return out
}

func compileRule(fullMethod string, r rule) (*compiledRule, error) {
	service, method, ok := strings.Cut(strings.TrimPrefix(fullMethod, "/"), "/")
	if !ok {
		return nil, fmt.Errorf("not a gRPC method name")
	}
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(service))
	if err != nil {
		return nil, err
	}
	sd, ok := d.(protoreflect.ServiceDescriptor)
	if !ok {
		return nil, fmt.Errorf("%s is not a service", service)
	}
	md := sd.Methods().ByName(protoreflect.Name(method))
	if md == nil {
		return nil, fmt.Errorf("service %s has no method %s", service, method)
	}
	input, err := protoregistry.GlobalTypes.FindMessageByName(md.Input().FullName())
	if err != nil {
		return nil, err
	}
	c := &compiledRule{method: method, input: input}
	msg := md.Input()
	if r.first != "" {
		if c.first = msg.Fields().ByName(protoreflect.Name(r.first)); c.first == nil || c.first.Message() == nil || c.first.ContainingOneof() == nil {
			return nil, fmt.Errorf("first: %s is not a message in a oneof of %s", r.first, msg.FullName())
		}
		msg = c.first.Message()
	}
	if r.node != "" {
		p, err := resolve(msg, r.node)
		if err != nil || len(p.fields) != 1 || p.fields[0].Kind() != protoreflect.StringKind || p.fields[0].IsList() {
			return nil, fmt.Errorf("node: %s is not a string field of %s (%v)", r.node, msg.FullName(), err)
		}
		c.node = p.fields[0]
	}
	for _, name := range r.required {
		p, err := resolve(msg, name)
		if err != nil {
			return nil, err
		}
		c.required = append(c.required, p)
	}
	if r.port != "" {
		p, err := resolve(msg, r.port)
		if err != nil {
			return nil, err
		}
		if k := p.fields[len(p.fields)-1].Kind(); k != protoreflect.Int32Kind || p.fields[len(p.fields)-1].IsList() {
			return nil, fmt.Errorf("port: %s is not an int32", r.port)
		}
		c.port = &p
	}
	if r.nodes != "" {
		p, err := resolve(msg, r.nodes)
		if err != nil {
			return nil, err
		}
		if f := p.fields[len(p.fields)-1]; !f.IsList() || f.Kind() != protoreflect.StringKind {
			return nil, fmt.Errorf("nodes: %s is not a repeated string", r.nodes)
		}
		c.nodes = &p
	}
	return c, nil
}

// resolve finds a dotted path of fields in msg; every field but the last
// must be a singular message.
func resolve(msg protoreflect.MessageDescriptor, path string) (fieldPath, error) {
	p := fieldPath{name: path}
	parts := strings.Split(path, ".")
	for i, part := range parts {
		f := msg.Fields().ByName(protoreflect.Name(part))
		if f == nil {
			return p, fmt.Errorf("%s has no field %s (in %s)", msg.FullName(), part, path)
		}
		p.fields = append(p.fields, f)
		if i < len(parts)-1 {
			if f.Message() == nil || f.IsList() || f.IsMap() {
				return p, fmt.Errorf("%s in %s is not a singular message", part, path)
			}
			msg = f.Message()
		}
	}
	return p, nil
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
