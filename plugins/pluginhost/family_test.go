package pluginhost

import (
	"context"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-plugin"

	networkv1 "github.com/fedlet/fedlet/plugins/proto/network/v1"
	"github.com/fedlet/fedlet/plugins/sdk"
)

// testFamily is a family registered by the tests alone, as storage and
// observability will be: one declaration, no adapter code in the host, and
// no Describe or Configure of its own (the base protocol's only). Its
// service happens to be the network protocol's.
var testFamily = &Family[networkv1.NetworkClient]{
	Name:         "testfamily",
	PluginName:   "testfamily",
	Versions:     map[int]plugin.PluginSet{1: {"testfamily": &sdk.FamilyPlugin{}}},
	Version:      1,
	NewClient:    networkv1.NewNetworkClient,
	Capabilities: []string{"CAPABILITY_KNOWN"},
}

func startTestFamily(t *testing.T, h *Host, spec PluginSpec) *Plugin[networkv1.NetworkClient] {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p, err := Start(ctx, h, testFamily, spec)
	if err != nil {
		cancel()
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		select {
		case <-p.Done():
		case <-time.After(time.Minute):
			t.Error("plugin did not stop within a minute of its context ending")
		}
	})
	return p
}

// familyStatus returns the test family plugin's Status message, which says
// what the base Configure gave it.
func familyStatus(t *testing.T, p *Plugin[networkv1.NetworkClient], node string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := p.Client().Status(ctx, &networkv1.StatusRequest{Node: node})
	if err != nil {
		t.Fatalf("Status(%s): %v", node, err)
	}
	return st.GetMessage()
}

// A family registered from a test gets everything the host does for the
// built-in ones: launch over AutoMTLS, the base protocol's Describe and
// Configure, its client, capabilities, reconfiguration, and restarts.
func TestFamilyRegisteredFromATest(t *testing.T) {
	h, logs := newTestHost(t, Config{})
	spec := PluginSpec{Name: "fam", Plugin: testFamilyName, Config: []byte(`{"x":1}`), Nodes: []string{"node-a"}}
	p := startTestFamily(t, h, spec)

	d := p.Describe()
	if d.GetName() != "testfamily" || d.GetVersion() != "0.0.2" || d.GetFamily() != "testfamily" {
		t.Errorf("Describe() = %v; want testfamily 0.0.2 of family testfamily", d)
	}
	if !p.HasCapability("CAPABILITY_KNOWN") || p.HasCapability("CAPABILITY_OTHER") {
		t.Errorf("capabilities %v; want CAPABILITY_KNOWN and not CAPABILITY_OTHER", d.GetCapabilities())
	}
	if rec := waitForLog(t, logs, "the plugin declares a capability this agent does not know; ignored"); rec["capability"] != "CAPABILITY_FROM_THE_FUTURE" || rec["plugin"] != "fam" {
		t.Errorf("unknown capability logged as %v", rec)
	}
	if msg := familyStatus(t, p, "node-a"); msg != `config={"x":1} nodes=[node-a] calls=1` {
		t.Errorf("after start the plugin says %q; want it configured once through the base protocol", msg)
	}

	if err := p.Reconfigure(t.Context(), []string{"node-a", "node-b"}, nil); err != nil {
		t.Fatal(err)
	}
	if msg := familyStatus(t, p, "node-b"); msg != `config={"x":1} nodes=[node-a node-b] calls=2` {
		t.Errorf("after Reconfigure the plugin says %q; want it configured again with both nodes", msg)
	}

	events, cancel := p.Subscribe()
	defer cancel()
	nextEvent(t, events, time.Second) // Started
	if err := syscall.Kill(p.proc.cur.Load().pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for ev := nextEvent(t, events, 30*time.Second); ev.Kind != Started; ev = nextEvent(t, events, time.Minute) {
	}
	if msg := familyStatus(t, p, "node-b"); msg != `config={"x":1} nodes=[node-a node-b] calls=1` {
		t.Errorf("after a restart the plugin says %q; want the new process configured once with the current nodes", msg)
	}
}

// A plugin of another family, started as the test family, is refused
// with what it says it is.
func TestPluginOfAnotherFamilyRefused(t *testing.T) {
	h, _ := newTestHost(t, Config{})
	_, err := Start(t.Context(), h, testFamily, PluginSpec{Name: "net", Plugin: testNetworkName})
	if err == nil {
		t.Fatal("a network plugin was started as a testfamily plugin")
	}
	for _, want := range []string{"start testfamily plugin net", "does not serve the testfamily protocol", `it says it is a "network" plugin`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

// A family without a Describe of its own cannot fall back for a plugin
// that does not serve the base protocol.
func TestFamilyWithoutFallbackNeedsTheBase(t *testing.T) {
	t.Setenv("TESTPLUGIN_PROTOCOL", "1") // the runtime protocol only, no base
	h, _ := newTestHost(t, Config{})
	_, err := Start(t.Context(), h, testFamily, PluginSpec{Name: "old", Plugin: testPluginName})
	if err == nil || !strings.Contains(err.Error(), "does not serve the testfamily protocol") {
		t.Errorf("Start of a plugin without the base as a base-only family: %v; want it refused", err)
	}
}
