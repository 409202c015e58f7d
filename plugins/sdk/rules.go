package sdk

import (
	"fmt"
	"strings"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	networkv1 "github.com/fedlet/fedlet/plugins/proto/network/v1"
	pluginv1 "github.com/fedlet/fedlet/plugins/proto/plugin/v1"
	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// rule is what one call's request must carry before the plugin sees it.
// Fields are named by their path in the request message, as the protocol's
// .proto names them ("pod.uid"); a refusal names the field the same way.
type rule struct {
	// first, for a bidirectional stream, is the oneof field its first
	// message must set (ExecRequest.start); the other paths are then
	// within that message, as are the field names of refusals.
	first string
	// node names the node the call is for: it must be set and served
	// (Nodes.Check).
	node string
	// required are the fields that must be set: a non-empty string, bytes
	// or list, or a message that is present.
	required []string
	// port is a field that must be a TCP port, 1 to 65535.
	port string
	// nodes, on a Configure call, lists the nodes the plugin is to serve:
	// none may be empty, and once the call succeeds they are the ones
	// Nodes serves.
	nodes string
}

// rules are the request rules of every call of the runtime and network
// protocols, by gRPC method; an empty row (Describe) checks nothing, and a
// method not listed (go-plugin's own services) passes as it comes.
// rules_internal_test.go checks that every method of both protocols has a
// row and that every path names a field. Another protocol served through
// the SDK adds its rows here; a row with nodes makes its Configure one the
// rules learn the served nodes from.
var rules = map[string]rule{
	// Base protocol (fedlet.plugin.v1), which every family serves: its
	// Configure is the one the host calls, so the served nodes are learnt
	// from it as from a family's own.
	pluginv1.Plugin_Describe_FullMethodName:       {},
	pluginv1.Plugin_Configure_FullMethodName:      {nodes: "nodes"},
	pluginv1.Plugin_ValidateConfig_FullMethodName: {},

	// Runtime protocol (fedlet.runtime.v1).
	runtimev1.Runtime_Describe_FullMethodName:        {},
	runtimev1.Runtime_Configure_FullMethodName:       {nodes: "nodes"},
	runtimev1.Runtime_GetNode_FullMethodName:         {node: "node"},
	runtimev1.Runtime_PullImage_FullMethodName:       {node: "node", required: []string{"image"}},
	runtimev1.Runtime_RunSandbox_FullMethodName:      {node: "node", required: []string{"pod.uid", "pod.name"}},
	runtimev1.Runtime_RemoveSandbox_FullMethodName:   {node: "node", required: []string{"pod_uid"}},
	runtimev1.Runtime_ListSandboxes_FullMethodName:   {node: "node"},
	runtimev1.Runtime_StartContainer_FullMethodName:  {node: "node", required: []string{"pod.uid", "container.name", "container.image"}},
	runtimev1.Runtime_StopContainer_FullMethodName:   {node: "node", required: []string{"pod_uid", "name"}},
	runtimev1.Runtime_RemoveContainer_FullMethodName: {node: "node", required: []string{"pod_uid", "name"}},
	runtimev1.Runtime_WatchContainers_FullMethodName: {node: "node"},
	runtimev1.Runtime_ContainerLogs_FullMethodName:   {node: "node", required: []string{"pod_uid", "container"}},
	runtimev1.Runtime_Exec_FullMethodName:            {first: "start", node: "node", required: []string{"pod_uid", "container", "command"}},
	runtimev1.Runtime_Attach_FullMethodName:          {first: "start", node: "node", required: []string{"pod_uid", "container"}},
	runtimev1.Runtime_PortForward_FullMethodName:     {first: "start", node: "node", required: []string{"pod_uid"}, port: "port"},
	// The pod UID of CreatePod is inside pod_object, Kubernetes protobuf
	// the plugin decodes: the plugin checks it.
	runtimev1.Runtime_CreatePod_FullMethodName:      {node: "node", required: []string{"pod_object"}},
	runtimev1.Runtime_DeletePod_FullMethodName:      {node: "node", required: []string{"pod.uid"}},
	runtimev1.Runtime_ListPods_FullMethodName:       {node: "node"},
	runtimev1.Runtime_WatchPods_FullMethodName:      {node: "node"},
	runtimev1.Runtime_WatchPodEvents_FullMethodName: {node: "node"},

	// Network protocol (fedlet.network.v1). An attachment is (container_id,
	// ifname), as in CNI; whether their values suit CNI is the plugin's
	// to check.
	networkv1.Network_Describe_FullMethodName:  {},
	networkv1.Network_Configure_FullMethodName: {nodes: "nodes"},
	networkv1.Network_Status_FullMethodName:    {node: "node"},
	networkv1.Network_Add_FullMethodName:       {node: "node", required: []string{"attachment.container_id", "attachment.ifname", "netns_path"}},
	networkv1.Network_Del_FullMethodName:       {node: "node", required: []string{"attachment.container_id", "attachment.ifname"}},
	networkv1.Network_Check_FullMethodName:     {node: "node", required: []string{"attachment.container_id", "attachment.ifname"}},
	networkv1.Network_GC_FullMethodName:        {node: "node"},

	// CSI (csi.v1), the storage family's protocol: the fields the
	// specification marks REQUIRED. CSI calls name no node of fedlet's.
	csi.Identity_GetPluginInfo_FullMethodName:                {},
	csi.Identity_GetPluginCapabilities_FullMethodName:        {},
	csi.Identity_Probe_FullMethodName:                        {},
	csi.Controller_CreateVolume_FullMethodName:               {required: []string{"name", "volume_capabilities"}},
	csi.Controller_DeleteVolume_FullMethodName:               {required: []string{"volume_id"}},
	csi.Controller_ControllerPublishVolume_FullMethodName:    {required: []string{"volume_id", "node_id", "volume_capability"}},
	csi.Controller_ControllerUnpublishVolume_FullMethodName:  {required: []string{"volume_id"}},
	csi.Controller_ValidateVolumeCapabilities_FullMethodName: {required: []string{"volume_id", "volume_capabilities"}},
	csi.Controller_ListVolumes_FullMethodName:                {},
	csi.Controller_GetCapacity_FullMethodName:                {},
	csi.Controller_ControllerGetCapabilities_FullMethodName:  {},
	csi.Controller_CreateSnapshot_FullMethodName:             {required: []string{"source_volume_id", "name"}},
	csi.Controller_DeleteSnapshot_FullMethodName:             {required: []string{"snapshot_id"}},
	csi.Controller_ListSnapshots_FullMethodName:              {},
	csi.Controller_GetSnapshot_FullMethodName:                {required: []string{"snapshot_id"}},
	csi.Controller_ControllerExpandVolume_FullMethodName:     {required: []string{"volume_id", "capacity_range"}},
	csi.Controller_ControllerGetVolume_FullMethodName:        {required: []string{"volume_id"}},
	csi.Controller_ControllerModifyVolume_FullMethodName:     {required: []string{"volume_id", "mutable_parameters"}},
	csi.Node_NodeStageVolume_FullMethodName:                  {required: []string{"volume_id", "staging_target_path", "volume_capability"}},
	csi.Node_NodeUnstageVolume_FullMethodName:                {required: []string{"volume_id", "staging_target_path"}},
	csi.Node_NodePublishVolume_FullMethodName:                {required: []string{"volume_id", "target_path", "volume_capability"}},
	csi.Node_NodeUnpublishVolume_FullMethodName:              {required: []string{"volume_id", "target_path"}},
	csi.Node_NodeGetVolumeStats_FullMethodName:               {required: []string{"volume_id", "volume_path"}},
	csi.Node_NodeExpandVolume_FullMethodName:                 {required: []string{"volume_id", "volume_path"}},
	csi.Node_NodeGetCapabilities_FullMethodName:              {},
	csi.Node_NodeGetInfo_FullMethodName:                      {},
	// Alpha calls (volume and storage health): left to the driver.
	csi.Controller_ControllerGetVolumeHealth_FullMethodName:  {},
	csi.Controller_ControllerListVolumeHealth_FullMethodName: {},
	csi.Node_NodeGetVolumeHealth_FullMethodName:              {},
	csi.Node_NodeGetStorageHealth_FullMethodName:             {},
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
