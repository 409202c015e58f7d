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

	"github.com/fedlet/fedlet/plugins/sdk"
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
// it. Errors are *sdk.ConfigError, each naming the offending field and its
// fix; once raw is decoded, every wrong field is reported (errors.Join).
func ParseConfig(raw []byte) (Config, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return Config{}, &sdk.ConfigError{Message: "empty; origin and members are required",
			Fix: `give at least {"origin": "<the hub's name>", "members": []}`}
	}
	// Members are decoded one by one so that an error names which.
	var top struct {
		Origin  string            `json:"origin"`
		Members []json.RawMessage `json:"members"`
		Hub     json.RawMessage   `json:"hub"`
	}
	if err := decodeStrict(raw, &top, ""); err != nil {
		return Config{}, err
	}
	c := Config{Origin: top.Origin}
	if len(top.Hub) > 0 && string(top.Hub) != "null" {
		c.Hub = &HubConfig{}
		if err := decodeStrict(top.Hub, c.Hub, "hub"); err != nil {
			return Config{}, err
		}
	}
	for i, m := range top.Members {
		var mc MemberConfig
		if err := decodeStrict(m, &mc, fmt.Sprintf("members[%d]", i)); err != nil {
			return Config{}, err
		}
		mc.field = fmt.Sprintf("config field members[%d].kubeconfig", i)
		c.Members = append(c.Members, mc)
	}

	var errs []error
	fail := func(field, fix, format string, args ...any) {
		errs = append(errs, &sdk.ConfigError{Field: field, Message: fmt.Sprintf(format, args...), Fix: fix})
	}
	if h := c.Hub; h != nil {
		if !filepath.IsAbs(h.Kubeconfig) {
			fail("hub.kubeconfig", "give the absolute path of a kubeconfig for the hub", "%q is not an absolute path", h.Kubeconfig)
		}
		if a := h.APIServer; a != "" {
			if _, port, err := net.SplitHostPort(a); err != nil || port == "" {
				fail("hub.apiServer", `give the hub API server as pods in the members reach it, as host:port ("10.0.0.1:6443")`, "%q is not host:port", a)
			}
		}
	}
	// The origin and the node name are label values on member objects.
	if c.Origin == "" {
		fail("origin", "set origin to the hub cluster's name", "must be set (the hub cluster's name)")
	} else if verrs := validation.IsValidLabelValue(c.Origin); len(verrs) > 0 {
		fail("origin", labelValueFix, "%q is not a valid label value: %s", c.Origin, strings.Join(verrs, "; "))
	}
	seen := map[string]bool{}
	for i, m := range c.Members {
		field := fmt.Sprintf("members[%d]", i)
		switch {
		case m.Node == "":
			fail(field+".node", "name the virtual node that stands for this member", "must be set")
		case len(validation.IsValidLabelValue(m.Node)) > 0:
			fail(field+".node", labelValueFix, "%q is not a valid label value: %s", m.Node, strings.Join(validation.IsValidLabelValue(m.Node), "; "))
		case seen[m.Node]:
			fail(field+".node", "give each member a node of its own", "%q is listed twice", m.Node)
		case m.Kubeconfig == "":
			fail(field+".kubeconfig", "give the absolute path of the member's kubeconfig", "must be set")
		case !filepath.IsAbs(m.Kubeconfig):
			fail(field+".kubeconfig", "give the absolute path of the member's kubeconfig", "%q is not an absolute path", m.Kubeconfig)
		}
		if m.Namespace != "" {
			if verrs := validation.IsDNS1123Label(m.Namespace); len(verrs) > 0 {
				fail(field+".namespace", "give a namespace name (lower-case letters, digits and '-'), or leave it out for the pod's own", "%q is not a namespace name: %s", m.Namespace, strings.Join(verrs, "; "))
			}
		}
		seen[m.Node] = true
	}
	if len(errs) > 0 {
		return Config{}, errors.Join(errs...)
	}
	return c, nil
}

// labelValueFix is how to put right a name that must be a label value.
const labelValueFix = "use at most 63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit"

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
// trailing data; errors name where (the field being decoded, empty for the
// whole config).
func decodeStrict(raw []byte, v any, where string) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return describeJSONError(err, where)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return &sdk.ConfigError{Field: where, Message: "unexpected data after the JSON value", Fix: "give one JSON value"}
	}
	return nil
}

// describeJSONError turns the decoder's errors into ones that name the field.
func describeJSONError(err error, where string) error {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		field := where
		switch {
		case typeErr.Field == "":
		case where == "":
			field = typeErr.Field
		default:
			field = where + "." + typeErr.Field
		}
		return &sdk.ConfigError{Field: field, Message: fmt.Sprintf("expected %s, got JSON %s", typeErr.Type, typeErr.Value),
			Fix: fmt.Sprintf("give a JSON %s", typeErr.Type)}
	}
	// The decoder reports an unknown field as `json: unknown field "x"`.
	if msg := err.Error(); strings.HasPrefix(msg, "json: unknown field ") {
		return &sdk.ConfigError{Field: where, Message: "unknown field " + strings.TrimPrefix(msg, "json: unknown field "),
			Fix: "remove it, or correct its spelling"}
	}
	return &sdk.ConfigError{Field: where, Message: err.Error()}
}
