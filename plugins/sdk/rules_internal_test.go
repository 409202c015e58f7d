package sdk

import (
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"

	networkv1 "github.com/fedlet/fedlet/plugins/proto/network/v1"
	pluginv1 "github.com/fedlet/fedlet/plugins/proto/plugin/v1"
	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// A call added to a protocol must get its row in the table, even an empty
// one: the rules are the protocol's, not a selection.
func TestEveryMethodHasARule(t *testing.T) {
	for _, sd := range []grpc.ServiceDesc{pluginv1.Plugin_ServiceDesc, runtimev1.Runtime_ServiceDesc, networkv1.Network_ServiceDesc,
		csi.Identity_ServiceDesc, csi.Controller_ServiceDesc, csi.Node_ServiceDesc} {
		var names []string
		for _, m := range sd.Methods {
			names = append(names, m.MethodName)
		}
		for _, s := range sd.Streams {
			names = append(names, s.StreamName)
		}
		for _, name := range names {
			if _, ok := compiled["/"+sd.ServiceName+"/"+name]; !ok {
				t.Errorf("%s.%s has no request rule", sd.ServiceName, name)
			}
		}
	}
	if len(compiled) != len(rules) {
		t.Errorf("%d rules compiled of %d", len(compiled), len(rules))
	}
}

// A rule naming a field its request does not have is refused, whatever
// the mistake.
func TestRulesNamingNoFieldAreRefused(t *testing.T) {
	for _, c := range []struct {
		method string
		r      rule
	}{
		{runtimev1.Runtime_GetNode_FullMethodName, rule{node: "nodes"}},
		{runtimev1.Runtime_RunSandbox_FullMethodName, rule{node: "node", required: []string{"pod.id"}}},
		{runtimev1.Runtime_RunSandbox_FullMethodName, rule{node: "node", required: []string{"node.uid"}}},
		{runtimev1.Runtime_RunSandbox_FullMethodName, rule{node: "pod"}},
		{runtimev1.Runtime_Exec_FullMethodName, rule{first: "stdin"}},
		{runtimev1.Runtime_PortForward_FullMethodName, rule{first: "start", port: "pod_uid"}},
		{runtimev1.Runtime_Configure_FullMethodName, rule{nodes: "config"}},
		{"/fedlet.runtime.v1.Runtime/Nothing", rule{}},
		{"/fedlet.runtime.v1.Nothing/GetNode", rule{}},
	} {
		if _, err := compileRule(c.method, c.r); err == nil {
			t.Errorf("%s %+v compiled", c.method, c.r)
		}
	}
}
