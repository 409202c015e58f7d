package conformance

import (
	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// Sandboxes: created once, listed, removed any number of times.
var sandboxChecks = []Check{
	{
		Name: "sandbox-run-idempotent",
		Rule: "RunSandbox creates the pod's sandbox; it returns the existing sandbox if the pod has one",
		run:  checkRunSandboxIdempotent,
	},
	{
		Name: "sandbox-listed",
		Rule: "ListSandboxes lists every sandbox of the node: it is how the agent adopts what runs after any restart",
		run:  checkSandboxListed,
	},
	{
		Name: "sandbox-remove-repeated",
		Rule: "RemoveSandbox removes the sandbox; every call is idempotent, and removing a sandbox that does not exist (any more) succeeds",
		run:  checkRemoveSandboxRepeated,
	},
	{
		Name: "sandbox-remove-unknown",
		Rule: "removing a sandbox that does not exist succeeds",
		run:  checkRemoveUnknownSandbox,
	},
}

func checkRunSandboxIdempotent(p *probe) {
	pod := p.newPod()
	first := p.runSandbox(pod)
	if first.GetId() == "" {
		p.Errorf("RunSandbox answered no sandbox id: %v", first)
	}
	if first.GetPod().GetUid() != pod.GetUid() {
		p.Errorf("RunSandbox answered pod UID %q, want %q", first.GetPod().GetUid(), pod.GetUid())
	}
	second := p.runSandbox(pod)
	if second.GetId() != first.GetId() {
		p.Errorf("a repeated RunSandbox answered sandbox id %q, the first %q: want the existing sandbox", second.GetId(), first.GetId())
	}
	n := 0
	for _, sb := range p.list() {
		if sb.GetSandbox().GetPod().GetUid() == pod.GetUid() {
			n++
		}
	}
	if n != 1 {
		p.Errorf("ListSandboxes lists the pod %d times after two RunSandbox calls, want once", n)
	}
}

func checkSandboxListed(p *probe) {
	pod := p.newPod()
	sb := p.runSandbox(pod)
	got := p.listed(pod)
	if got == nil {
		p.Fatalf("ListSandboxes does not list the sandbox of pod %s", pod.GetUid())
	}
	if got.GetSandbox().GetId() != sb.GetId() {
		p.Errorf("ListSandboxes lists sandbox id %q, RunSandbox answered %q", got.GetSandbox().GetId(), sb.GetId())
	}
	if ref := got.GetSandbox().GetPod(); ref.GetNamespace() != pod.GetNamespace() || ref.GetName() != pod.GetName() {
		p.Errorf("ListSandboxes lists the pod as %s/%s, want %s/%s", ref.GetNamespace(), ref.GetName(), pod.GetNamespace(), pod.GetName())
	}
	if n := len(got.GetContainers()); n != 0 {
		p.Errorf("a sandbox with no containers started lists %d containers", n)
	}
}

func checkRemoveSandboxRepeated(p *probe) {
	pod := p.newPod()
	p.runSandbox(pod)
	for i := 1; i <= 2; i++ {
		ctx, cancel := p.call()
		_, err := p.rt().RemoveSandbox(ctx, &runtimev1.RemoveSandboxRequest{Node: p.node(), PodUid: pod.GetUid()})
		cancel()
		if err != nil {
			p.Fatalf("RemoveSandbox (call %d): %v", i, err)
		}
		if p.listed(pod) != nil {
			p.Fatalf("ListSandboxes still lists the pod after RemoveSandbox (call %d)", i)
		}
	}
}

func checkRemoveUnknownSandbox(p *probe) {
	ctx, cancel := p.call()
	defer cancel()
	uid := newUID()
	if _, err := p.rt().RemoveSandbox(ctx, &runtimev1.RemoveSandboxRequest{Node: p.node(), PodUid: uid}); err != nil {
		p.Errorf("RemoveSandbox of pod %s, which never had a sandbox: %v, want success", uid, err)
	}
}
