package sdk

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"google.golang.org/protobuf/proto"

	pluginv1 "github.com/fedlet/fedlet/plugins/proto/plugin/v1"
	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// recordingRuntime records its Configure calls. (sdktest imports this
// package, so the internal tests cannot use its runtime.)
type recordingRuntime struct {
	runtimev1.UnimplementedRuntimeServer
	config []byte
	nodes  []string
	calls  int
}

func (r *recordingRuntime) Describe(context.Context, *runtimev1.DescribeRequest) (*runtimev1.DescribeResponse, error) {
	return &runtimev1.DescribeResponse{Name: "mem", Version: "1.0"}, nil
}

func (r *recordingRuntime) Configure(_ context.Context, req *runtimev1.ConfigureRequest) (*runtimev1.ConfigureResponse, error) {
	r.config, r.nodes = req.GetConfig(), req.GetNodes()
	r.calls++
	return &runtimev1.ConfigureResponse{}, nil
}

// capableRuntime declares a capability.
type capableRuntime struct{ *recordingRuntime }

func (capableRuntime) Describe(context.Context, *runtimev1.DescribeRequest) (*runtimev1.DescribeResponse, error) {
	return &runtimev1.DescribeResponse{Name: "mem", Version: "1.0", Capabilities: []runtimev1.Capability{runtimev1.Capability_CAPABILITY_OWN_NETWORK}}, nil
}

// The base Describe is the Description, completed from the family's own
// Describe where it says nothing.
func TestBaseDescribeCompletesFromTheFamily(t *testing.T) {
	impl := capableRuntime{&recordingRuntime{}}
	for _, tc := range []struct {
		desc Description
		want *pluginv1.DescribeResponse
	}{
		{Description{}, &pluginv1.DescribeResponse{Name: "mem", Version: "1.0", Family: "runtime", Capabilities: []string{"CAPABILITY_OWN_NETWORK"}}},
		{Description{Name: "other", Version: "2.0", Capabilities: []string{}, Config: []ConfigField{{Name: "a", Type: TypeString, Required: true}}},
			&pluginv1.DescribeResponse{Name: "other", Version: "2.0", Family: "runtime", Capabilities: []string{},
				Config: &pluginv1.ConfigSchema{Fields: []*pluginv1.ConfigField{{Name: "a", Type: "string", Required: true}}}}},
	} {
		s := &baseServer{desc: tc.desc, family: runtimeHooks(impl)}
		got, err := s.Describe(t.Context(), &pluginv1.DescribeRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(got, tc.want) {
			t.Errorf("Describe with %+v = %v, want %v", tc.desc, got, tc.want)
		}
	}
}

// The base Configure reaches the family's Configure, node settings and all.
func TestBaseConfigureReachesTheFamily(t *testing.T) {
	impl := &recordingRuntime{}
	s := &baseServer{family: runtimeHooks(impl)}
	_, err := s.Configure(t.Context(), &pluginv1.ConfigureRequest{Config: []byte(`{}`), Nodes: []string{"n1"},
		NodeSettings: map[string]*pluginv1.NodeSettings{"n1": {Data: map[string][]byte{"k": []byte("v")}}}})
	if err != nil {
		t.Fatal(err)
	}
	if config, nodes, calls := impl.config, impl.nodes, impl.calls; string(config) != `{}` || len(nodes) != 1 || nodes[0] != "n1" || calls != 1 {
		t.Errorf("the family's Configure got %s %v after %d calls", config, nodes, calls)
	}
}

// ValidateConfig checks the described fields first, then runs Validate,
// whose ConfigErrors become violations naming their fields.
func TestBaseValidateConfig(t *testing.T) {
	desc := Description{
		Config: []ConfigField{
			{Name: "address", Type: TypeString, Required: true, Description: "the socket"},
			{Name: "maxPods", Type: TypeInteger},
			{Name: "ratio", Type: TypeNumber},
			{Name: "labels", Type: TypeObject},
		},
		StrictConfig: true,
		Validate: func(config []byte, nodes []string) error {
			return errors.Join(
				&ConfigError{Field: "labels.a", Message: "not a label", Fix: "use letters"},
				fmt.Errorf("wrapped: %w", &ConfigError{Field: "maxPods", Message: "too many"}),
				errors.New("nodes "+fmt.Sprint(nodes)+" cannot share a process"),
			)
		},
	}
	s := &baseServer{desc: desc, family: runtimeHooks(&recordingRuntime{})}
	for _, tc := range []struct {
		config string
		want   []*pluginv1.Violation
	}{
		{`{"maxPods": 1.5, "ratio": 1.5, "labels": [], "adress": "x"}`, []*pluginv1.Violation{
			{Field: "address", Message: "must be set", Fix: "set address (string): the socket"},
			{Field: "maxPods", Message: "expected integer, got JSON number", Fix: "give maxPods a JSON integer"},
			{Field: "labels", Message: "expected object, got JSON array", Fix: "give labels a JSON object"},
			{Field: "adress", Message: "unknown field", Fix: "remove it, or correct its spelling: the fields are [address maxPods ratio labels]"},
		}},
		{`[1]`, []*pluginv1.Violation{{Message: "not a JSON object: json: cannot unmarshal array into Go value of type map[string]json.RawMessage", Fix: "write the plugin's config as a mapping of its fields"}}},
		{`{"address": "/a", "maxPods": 3, "ratio": 2}`, []*pluginv1.Violation{
			{Field: "labels.a", Message: "not a label", Fix: "use letters"},
			{Field: "maxPods", Message: "too many"},
			{Message: "nodes [n1 n2] cannot share a process"},
		}},
	} {
		resp, err := s.ValidateConfig(t.Context(), &pluginv1.ValidateConfigRequest{Config: []byte(tc.config), Nodes: []string{"n1", "n2"}})
		if err != nil {
			t.Fatal(err)
		}
		got := resp.GetViolations()
		if len(got) != len(tc.want) {
			t.Errorf("ValidateConfig(%s) = %v, want %v", tc.config, got, tc.want)
			continue
		}
		for i := range got {
			if !proto.Equal(got[i], tc.want[i]) {
				t.Errorf("ValidateConfig(%s) violation %d = %v, want %v", tc.config, i, got[i], tc.want[i])
			}
		}
	}
}

func TestConfigErrorText(t *testing.T) {
	if got := (&ConfigError{Field: "a.b", Message: "wrong"}).Error(); got != "config field a.b: wrong" {
		t.Errorf("Error() = %q", got)
	}
	if got := (&ConfigError{Message: "not JSON"}).Error(); got != "config: not JSON" {
		t.Errorf("Error() = %q", got)
	}
	if Violations(nil) != nil {
		t.Error("Violations(nil) is not empty")
	}
}
