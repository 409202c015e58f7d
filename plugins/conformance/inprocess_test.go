package conformance_test

import (
	"context"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fedlet/fedlet/plugins/conformance"
	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
	"github.com/fedlet/fedlet/plugins/sdk"
	"github.com/fedlet/fedlet/plugins/sdk/sdktest"
)

// TestServerPassesOnlyWhatPasses runs the in-process mode against the
// in-memory runtime that the binary-mode test runs as a plugin process,
// served as that binary serves it (without the SDK's request rules, which
// would answer the bad-input checks for it): the same checks pass, and the
// same rules are reported broken.
func TestServerPassesOnlyWhatPasses(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	res := conformance.RunServer(ctx, func() runtimev1.RuntimeServer { return sdktest.New("testplugin", "0.0.1") }, conformance.Config{
		Image:        "registry.invalid/none:1",
		Timeout:      20 * time.Second,
		ServeOptions: []sdk.ServeOption{sdk.WithoutRequestRules()},
	}, nil)
	if res.Suite != conformance.ContainerSuite || len(res.Outcomes) != len(conformance.Checks()) {
		t.Fatalf("suite %q, %d outcomes for %d checks", res.Suite, len(res.Outcomes), len(conformance.Checks()))
	}
	wantPass := map[string]bool{
		"handshake": true, "describe": true, "configure": true, "get-node": true,
		"sandbox-run-idempotent": true, "sandbox-listed": true,
		"sandbox-remove-repeated": true, "sandbox-remove-unknown": true,
	}
	for _, o := range res.Outcomes {
		if o.Passed() != wantPass[o.Check.Name] {
			t.Errorf("%s: passed %v, want %v (err: %v)", o.Check.Name, o.Passed(), wantPass[o.Check.Name], o.Err)
		}
	}
	o := map[string]conformance.Outcome{}
	for _, oc := range res.Outcomes {
		o[oc.Check.Name] = oc
	}
	if err := o["bad-input-no-pod-uid"].Err; err == nil || !strings.Contains(err.Error(), "RemoveSandbox without pod UID: succeeded, want InvalidArgument") {
		t.Errorf("bad-input-no-pod-uid: %v", err)
	}
	if err := o["image-pull"].Err; err == nil || !strings.Contains(err.Error(), "Unimplemented") {
		t.Errorf("image-pull: %v, want the Unimplemented it got", err)
	}
}

// panicky panics in GetNode, as a plugin with a nil dereference would.
type panicky struct{ *sdktest.Runtime }

func (panicky) GetNode(context.Context, *runtimev1.GetNodeRequest) (*runtimev1.Node, error) {
	panic("GetNode is broken")
}

// TestServerPanicIsACrash: a handler that panics kills the in-process
// plugin as it would a process: the check that wants the plugin to survive
// bad input fails saying so, with the panic, the kit serves a fresh
// implementation from the constructor, and the next check runs on it.
func TestServerPanicIsACrash(t *testing.T) {
	var made atomic.Int32
	res := conformance.RunServer(t.Context(), func() runtimev1.RuntimeServer {
		made.Add(1)
		return panicky{sdktest.New("testplugin", "0.0.1")}
	}, conformance.Config{Timeout: 20 * time.Second, Run: regexp.MustCompile(`^(bad-input-no-node|sandbox-listed)$`),
		ServeOptions: []sdk.ServeOption{sdk.WithoutRequestRules()}}, nil)
	if len(res.Outcomes) != 2 {
		t.Fatalf("%d outcomes, want 2", len(res.Outcomes))
	}
	o := map[string]conformance.Outcome{}
	for _, oc := range res.Outcomes {
		o[oc.Check.Name] = oc
	}
	if o := o["bad-input-no-node"]; o.Passed() || !strings.Contains(o.Err.Error(), "did not survive GetNode without node") || !strings.Contains(o.Err.Error(), "GetNode is broken") {
		t.Errorf("bad-input-no-node: %v, want a failure saying the plugin did not survive GetNode, with the panic", o.Err)
	}
	if o := o["sandbox-listed"]; !o.Passed() {
		t.Errorf("sandbox-listed after the crash: %v, want it to pass on the restarted server", o.Err)
	}
	if n := made.Load(); n != 2 {
		t.Errorf("the constructor was called %d times, want 2: the first server, and one after the crash", n)
	}
}

// TestServerAppliesTheSDKsRules: served as sdk.ServeRuntime serves it, the
// in-memory runtime passes the bad-input checks it fails without the SDK's
// request rules, since the SDK refuses those calls before it sees them.
func TestServerAppliesTheSDKsRules(t *testing.T) {
	res := conformance.RunServer(t.Context(), func() runtimev1.RuntimeServer { return sdktest.New("testplugin", "0.0.1") },
		conformance.Config{Timeout: 20 * time.Second, Run: regexp.MustCompile(`^bad-input-no-(node|pod-uid)$`)}, nil)
	if len(res.Outcomes) != 2 {
		t.Fatalf("%d outcomes, want 2", len(res.Outcomes))
	}
	for _, o := range res.Outcomes {
		if !o.Passed() {
			t.Errorf("%s: %v, want it to pass behind the SDK's rules", o.Check.Name, o.Err)
		}
	}
}

// TestServerWithoutConstructor fails every check, saying why.
func TestServerWithoutConstructor(t *testing.T) {
	res := conformance.RunServer(t.Context(), nil, conformance.Config{}, nil)
	if res.Passed() != 0 || len(res.Outcomes) != len(conformance.Checks()) {
		t.Fatalf("%s, %d outcomes", res.Summary(), len(res.Outcomes))
	}
	if err := res.Outcomes[0].Err; !strings.Contains(err.Error(), "no server constructor") {
		t.Errorf("%v, want it to say no server constructor was given", err)
	}
}
