package conformance

import (
	"k8s.io/apimachinery/pkg/api/resource"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// The plugin process: how it starts and what it says of itself; both
// suites begin with these.
var startChecks = []Check{
	{
		Name: "handshake",
		Rule: "the plugin serves through the SDK: go-plugin's handshake cookie, AutoMTLS and runtime protocol version negotiation (sdk.Handshake, sdk.VersionedPlugins) succeed with the agent's plugin host",
		run:  checkStartStage(stageHandshake),
	},
	{
		Name: "describe",
		Rule: "Describe says what the plugin is: a name and a version, and only known capabilities",
		run:  checkDescribe,
	},
	{
		Name: "configure",
		Rule: "Configure hands the plugin its configuration, once after every start of the process, before any other call but Describe (and the base protocol's ValidateConfig, which finds no violation in it): it accepts the given config",
		run:  checkStartStage(stageConfigure),
	},
}

// The node, as the container-level suite checks it.
var nodeChecks = []Check{
	{
		Name: "get-node",
		Rule: "GetNode reports the node's capacity (cpu, memory, pods in Kubernetes quantity syntax), system information (operating system, architecture) and health (ready)",
		run:  checkGetNode,
	},
}

// checkStartStage passes when the plugin's start got past stage: the host
// launched it and called Describe then Configure, failing at the first stage
// that failed.
func checkStartStage(stage string) func(*probe) {
	return func(p *probe) {
		se := p.suite.startErr
		if se == nil {
			return
		}
		switch {
		case se.stage == stage:
			p.Fatalf("%v", se.err)
		case stageOrder(se.stage) < stageOrder(stage):
			p.Fatalf("not run: the plugin's start failed at %s: %v", se.stage, se.err)
		}
	}
}

func stageOrder(stage string) int {
	switch stage {
	case stageHandshake:
		return 0
	case stageDescribe:
		return 1
	}
	return 2
}

func checkDescribe(p *probe) {
	if se := p.suite.startErr; se != nil && se.stage == stageDescribe {
		p.Fatalf("%v", se.err)
	}
	ctx, cancel := p.call()
	defer cancel()
	d, err := p.rt().Describe(ctx, &runtimev1.DescribeRequest{})
	if err != nil {
		p.Fatalf("Describe: %v", err)
	}
	if d.GetName() == "" {
		p.Errorf("Describe answered no name")
	}
	if d.GetVersion() == "" {
		p.Errorf("Describe answered no version")
	}
	for _, c := range d.GetCapabilities() {
		if _, known := runtimev1.Capability_name[int32(c)]; !known || c == runtimev1.Capability_CAPABILITY_UNSPECIFIED {
			p.Errorf("Describe answered an unknown capability %d", c)
		}
	}
}

func checkGetNode(p *probe) {
	ctx, cancel := p.call()
	defer cancel()
	n, err := p.rt().GetNode(ctx, &runtimev1.GetNodeRequest{Node: p.node()})
	if err != nil {
		p.Fatalf("GetNode %s: %v", p.node(), err)
	}
	p.checkNodeReport(n)
	if !n.GetReady() {
		p.Errorf("the node is not ready: reason %q, message %q", n.GetReason(), n.GetMessage())
	}
}

// checkNodeReport checks the capacity and system information of a node.
func (p *probe) checkNodeReport(n *runtimev1.Node) {
	for _, name := range []string{"cpu", "memory", "pods"} {
		v, ok := n.GetCapacity()[name]
		if !ok {
			p.Errorf("capacity has no %s: %v", name, n.GetCapacity())
			continue
		}
		if _, err := resource.ParseQuantity(v); err != nil {
			p.Errorf("capacity %s = %q is not a Kubernetes quantity: %v", name, v, err)
		}
	}
	for name, v := range n.GetAllocatable() {
		if _, err := resource.ParseQuantity(v); err != nil {
			p.Errorf("allocatable %s = %q is not a Kubernetes quantity: %v", name, v, err)
		}
	}
	if n.GetOperatingSystem() == "" {
		p.Errorf("no operating system")
	}
	if n.GetArchitecture() == "" {
		p.Errorf("no architecture")
	}
}
