package kubernetes

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// Config is the plugin's configuration, given as JSON to Configure:
//
//	{"origin": "hub",
//	 "members": [{"node": "member-1", "kubeconfig": "/etc/fedlet/member-1.kubeconfig", "namespace": ""}]}
type Config struct {
	// Origin names the hub cluster. It is the value of the
	// fedlet.io/origin-cluster label on everything the plugin creates in a
	// member, so that two hubs sharing a member never touch each other's
	// pods.
	Origin string `json:"origin"`
	// Members are the member clusters, one behind each virtual node, whose
	// kubeconfig is a file; members added at run time come with their
	// kubeconfig in ConfigureRequest.node_settings instead.
	Members []MemberConfig `json:"members"`
	// Hub, if set, lets the plugin read the hub's Services and
	// EndpointSlices, to reflect into each member those that select its
	// pods.
	Hub *HubConfig `json:"hub,omitempty"`
}

// HubConfig is how the plugin reaches the hub's API server.
type HubConfig struct {
	// Kubeconfig is the absolute path of a kubeconfig for the hub (the
	// agent's own does): it needs list and watch on services and
	// endpointslices.
	Kubeconfig string `json:"kubeconfig"`
	// APIServer is the hub API server's host:port as pods in the members
	// reach it; set, it is their KUBERNETES_SERVICE_HOST and _PORT, so that
	// in-cluster clients use their hub token against the hub.
	APIServer string `json:"apiServer,omitempty"`
}

// MemberConfig is one member cluster.
type MemberConfig struct {
	// Node is the virtual node the agent serves with this member: the name
	// every call of the runtime protocol carries.
	Node string `json:"node"`
	// Kubeconfig is the absolute path of a kubeconfig file for the member's
	// API server; its current context is used.
	Kubeconfig string `json:"kubeconfig"`
	// Namespace is the member namespace every pod of the node goes to; empty
	// means the pod's own namespace on the hub.
	Namespace string `json:"namespace"`
	// KubeconfigData is the kubeconfig itself, for a member whose settings
	// came with Configure (node_settings) rather than in the file.
	KubeconfigData []byte `json:"-"`

	// field is where the kubeconfig was given, for errors.
	field string
}

// ParseConfig decodes raw strictly (unknown fields are refused) and checks
// it. Errors name the offending field.
func ParseConfig(raw []byte) (Config, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return Config{}, errors.New("config: empty; origin and members are required")
	}
	// Members are decoded one by one so that an error names which.
	var top struct {
		Origin  string            `json:"origin"`
		Members []json.RawMessage `json:"members"`
		Hub     json.RawMessage   `json:"hub"`
	}
	if err := decodeStrict(raw, &top, "config"); err != nil {
		return Config{}, err
	}
	c := Config{Origin: top.Origin}
	if len(top.Hub) > 0 && string(top.Hub) != "null" {
		c.Hub = &HubConfig{}
		if err := decodeStrict(top.Hub, c.Hub, "config field hub"); err != nil {
			return Config{}, err
		}
		if !filepath.IsAbs(c.Hub.Kubeconfig) {
			return Config{}, fmt.Errorf("config field hub.kubeconfig: %q is not an absolute path", c.Hub.Kubeconfig)
		}
		if a := c.Hub.APIServer; a != "" {
			if _, port, err := net.SplitHostPort(a); err != nil || port == "" {
				return Config{}, fmt.Errorf("config field hub.apiServer: %q is not host:port", a)
			}
		}
	}
	for i, m := range top.Members {
		var mc MemberConfig
		if err := decodeStrict(m, &mc, fmt.Sprintf("config field members[%d]", i)); err != nil {
			return Config{}, err
		}
		mc.field = fmt.Sprintf("config field members[%d].kubeconfig", i)
		c.Members = append(c.Members, mc)
	}
	if c.Origin == "" {
		return Config{}, errors.New("config field origin: must be set (the hub cluster's name)")
	}
	// The origin and the node name are label values on member objects.
	if errs := validation.IsValidLabelValue(c.Origin); len(errs) > 0 {
		return Config{}, fmt.Errorf("config field origin: %q is not a valid label value: %s", c.Origin, strings.Join(errs, "; "))
	}
	seen := map[string]bool{}
	for i, m := range c.Members {
		field := fmt.Sprintf("config field members[%d]", i)
		switch {
		case m.Node == "":
			return Config{}, fmt.Errorf("%s.node: must be set", field)
		case len(validation.IsValidLabelValue(m.Node)) > 0:
			return Config{}, fmt.Errorf("%s.node: %q is not a valid label value: %s", field, m.Node, strings.Join(validation.IsValidLabelValue(m.Node), "; "))
		case seen[m.Node]:
			return Config{}, fmt.Errorf("%s.node: %q is listed twice", field, m.Node)
		case m.Kubeconfig == "":
			return Config{}, fmt.Errorf("%s.kubeconfig: must be set", field)
		case !filepath.IsAbs(m.Kubeconfig):
			return Config{}, fmt.Errorf("%s.kubeconfig: %q is not an absolute path", field, m.Kubeconfig)
		}
		if m.Namespace != "" {
			if errs := validation.IsDNS1123Label(m.Namespace); len(errs) > 0 {
				return Config{}, fmt.Errorf("%s.namespace: %q is not a namespace name: %s", field, m.Namespace, strings.Join(errs, "; "))
			}
		}
		seen[m.Node] = true
	}
	return c, nil
}

// member returns the member of node.
func (c Config) member(node string) (MemberConfig, bool) {
	for _, m := range c.Members {
		if m.Node == node {
			return m, true
		}
	}
	return MemberConfig{}, false
}

// decodeStrict decodes one JSON value into v, refusing unknown fields and
// trailing data; errors start with where (the field being decoded).
func decodeStrict(raw []byte, v any, where string) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return describeJSONError(err, where)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("%s: unexpected data after the JSON value", where)
	}
	return nil
}

// describeJSONError turns the decoder's errors into ones that name the field.
func describeJSONError(err error, where string) error {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		if typeErr.Field == "" {
			return fmt.Errorf("%s: expected %s, got JSON %s", where, typeErr.Type, typeErr.Value)
		}
		field := where + "." + typeErr.Field
		if where == "config" {
			field = "config field " + typeErr.Field
		}
		return fmt.Errorf("%s: expected %s, got JSON %s", field, typeErr.Type, typeErr.Value)
	}
	// The decoder reports an unknown field as `json: unknown field "x"`.
	if msg := err.Error(); strings.HasPrefix(msg, "json: unknown field ") {
		return fmt.Errorf("%s: unknown field %s", where, strings.TrimPrefix(msg, "json: unknown field "))
	}
	return fmt.Errorf("%s: %w", where, err)
}
