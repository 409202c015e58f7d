package config

import (
	"errors"
	"maps"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

const valid = `
apiVersion: fedlet.io/v1alpha1
kind: AgentConfig
kubeconfig: /etc/fedlet/kubeconfig
nodeAPI:
  address: 127.0.0.1:10250
  tlsCertFile: /etc/fedlet/node.crt
  tlsKeyFile: /etc/fedlet/node.key
  clientCAFile: /etc/fedlet/ca.crt
plugins:
  dirs: [/usr/lib/fedlet]
  checksums:
    fedlet-runtime-containerd: sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
runtimes:
  - name: containerd
    plugin: fedlet-runtime-containerd
    config: {address: /run/containerd.sock}
nodes:
  - name: node-a
    runtime: containerd
    taints: [{key: example.com/x, effect: NoSchedule}]
`

func TestParseValid(t *testing.T) {
	cfg, err := Parse([]byte(valid))
	if err != nil {
		t.Fatal(err)
	}
	if got := string(cfg.Runtimes[0].Config); got != `{"address":"/run/containerd.sock"}` {
		t.Errorf("runtime config = %s", got)
	}
	if cfg.Nodes[0].Taints[0].Effect != "NoSchedule" {
		t.Errorf("taint not decoded: %+v", cfg.Nodes[0].Taints)
	}
	if got := cfg.Runtimes[0].Timeout(); got != 0 {
		t.Errorf("runtime call timeout = %s, want 0 (the plugin host's default)", got)
	}
	cfg, err = Parse([]byte(strings.Replace(valid, "plugin: fedlet-runtime-containerd\n", "plugin: fedlet-runtime-containerd\n    callTimeout: 45s\n", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Runtimes[0].Timeout(); got != 45*time.Second {
		t.Errorf("runtime call timeout = %s, want 45s", got)
	}
}

// Members alone are enough nodes: they come at run time.
func TestParseMembersOnly(t *testing.T) {
	doc := valid[:strings.Index(valid, "nodes:")] + "members: {runtime: containerd}\n"
	cfg, err := Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Members.Namespace != DefaultMembersNamespace {
		t.Errorf("members.namespace = %q, want the default %q", cfg.Members.Namespace, DefaultMembersNamespace)
	}
}

func TestParseErrorsNameTheField(t *testing.T) {
	cases := []struct {
		name, old, new, want string
	}{
		{"unknown field", "kind: AgentConfig", "kind: AgentConfig\nnodez: []", "nodez: is not a known field"},
		{"wrong type", "dirs: [/usr/lib/fedlet]", "dirs: 3", "plugins.dirs: is a number"},
		{"unknown runtime", "runtime: containerd\n", "runtime: docker\n", `nodes[0].runtime: "docker" names no runtime (expected one of the runtimes[].name: containerd)`},
		{"bad node name", "name: node-a", "name: Node_A", `nodes[0].name: "Node_A" is not a valid node name`},
		{"bad pin", "sha256:0123", "md5:0123", "plugins.checksums.fedlet-runtime-containerd"},
		{"plugin path", "plugin: fedlet-runtime-containerd", "plugin: ../x", `runtimes[0].plugin: "../x" is not a plugin name`},
		{"bad address", "127.0.0.1:10250", "10250", "nodeAPI.address"},
		{"bad taint", "effect: NoSchedule", "effect: Never", "nodes[0].taints[0]"},
		{"kind", "kind: AgentConfig", "kind: Config", `kind: is "Config"`},
		{"unknown network", "runtime: containerd\n", "runtime: containerd\n    network: cni\n", `nodes[0].network: "cni" names no network (expected one of the networks[].name: (none defined), or nothing)`},
		{"bad pod CIDR", "runtime: containerd\n", "runtime: containerd\n    podCIDR: 10.244.1.0\n", `nodes[0].podCIDR: "10.244.1.0" is not a CIDR`},
		{"bad cluster DNS", "kind: AgentConfig", "kind: AgentConfig\nclusterDNS: [kube-dns]", `clusterDNS[0]: "kube-dns" is not an IP address`},
		{"network plugin path", "nodes:", "networks: [{name: cni, plugin: /bin/x}]\nnodes:", `networks[0].plugin: "/bin/x" is not a plugin name`},
		{"members' runtime", "nodes:", "members: {runtime: members}\nnodes:", `members.runtime: "members" names no runtime (expected one of the runtimes[].name: containerd (a kubernetes plugin))`},
		{"bad call timeout", "plugin: fedlet-runtime-containerd\n", "plugin: fedlet-runtime-containerd\n    callTimeout: 2 minutes\n", `runtimes[0].callTimeout: "2 minutes" is not a duration of a second or more`},
		{"tiny call timeout", "plugin: fedlet-runtime-containerd\n", "plugin: fedlet-runtime-containerd\n    callTimeout: 10ms\n", `runtimes[0].callTimeout: "10ms" is not a duration`},
		{"members' namespace", "nodes:", "members: {runtime: containerd, namespace: Fedlet_System}\nnodes:", `members.namespace: "Fedlet_System" is not a namespace name`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			doc := strings.Replace(valid, tc.old, tc.new, 1)
			if doc == valid {
				t.Fatalf("test case did not change the document")
			}
			_, err := Parse([]byte(doc))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

// Every problem is a field.Error naming its field, and a name that is not
// one says why, in apimachinery's words.
func TestValidateErrorsAreFieldErrors(t *testing.T) {
	doc := strings.Replace(valid, "name: node-a", "name: Node_A", 1)
	doc = strings.Replace(doc, "runtime: containerd\n", "runtime: docker\n", 1)
	_, err := Parse([]byte(doc))
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("error %v is not config.Errors", err)
	}
	got := map[string]field.ErrorType{}
	for _, e := range errs {
		got[e.Field] = e.Type
	}
	want := map[string]field.ErrorType{"nodes[0].name": field.ErrorTypeInvalid, "nodes[0].runtime": field.ErrorTypeInvalid}
	if !maps.Equal(got, want) {
		t.Errorf("errors %v, want %v", got, want)
	}
	if !strings.Contains(err.Error(), "a lowercase RFC 1123 subdomain") {
		t.Errorf("error %q does not say why the node name is not one", err)
	}
}
