package sdk

import (
	networkv1 "github.com/fedlet/fedlet/plugins/proto/network/v1"
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
}
