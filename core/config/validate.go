package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Errors is every problem Validate (or Parse) found, one field.Error
// each: its Field is the path to the value in the config, its Type and
// BadValue say what is wrong with which value, and its Detail says what is
// wrong and what is expected instead. It prints one problem a line,
// "field: problem (expected ...)".
type Errors field.ErrorList

func (e Errors) Error() string {
	lines := make([]string, len(e))
	for i, fe := range e {
		lines[i] = fe.Field + ": " + fe.Detail
	}
	return strings.Join(lines, "\n")
}

// problems collects field errors, each with the fix it expects.
type problems struct{ list field.ErrorList }

func (p *problems) invalid(path *field.Path, value any, problem, expected string) {
	p.list = append(p.list, field.Invalid(path, value, fmt.Sprintf("%s (expected %s)", problem, expected)))
}

func (p *problems) required(path *field.Path, problem, expected string) {
	p.list = append(p.list, field.Required(path, fmt.Sprintf("%s (expected %s)", problem, expected)))
}

func (p *problems) duplicate(path *field.Path, value any, expected string) {
	e := field.Duplicate(path, value)
	e.Detail = fmt.Sprintf("%q is used twice (expected %s)", value, expected)
	p.list = append(p.list, e)
}

func (p *problems) err() error {
	if len(p.list) == 0 {
		return nil
	}
	return Errors(p.list)
}

// notName says why value is not a name of the kind the check is for: the
// reasons of apimachinery's validation, or nothing when it is one.
func notName(check func(string) []string, value string) string {
	if msgs := check(value); len(msgs) > 0 {
		return ": " + strings.Join(msgs, "; ")
	}
	return ""
}

var (
	sha256Pin = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
	effects   = []string{"NoSchedule", "PreferNoSchedule", "NoExecute"}
)

// Validate checks every field and returns all problems found (Errors),
// each naming its field.
func (c *Agent) Validate() error {
	var p problems
	if c.APIVersion != APIVersion {
		p.invalid(field.NewPath("apiVersion"), c.APIVersion, fmt.Sprintf("is %q", c.APIVersion), fmt.Sprintf("%q", APIVersion))
	}
	if c.Kind != Kind {
		p.invalid(field.NewPath("kind"), c.Kind, fmt.Sprintf("is %q", c.Kind), fmt.Sprintf("%q", Kind))
	}
	if !filepath.IsAbs(c.StateDir) {
		p.invalid(field.NewPath("stateDir"), c.StateDir, fmt.Sprintf("%q is not an absolute path", c.StateDir), "a directory such as "+DefaultStateDir)
	}
	if c.Kubeconfig == "" {
		p.required(field.NewPath("kubeconfig"), "is empty", "the path of a kubeconfig for the API server")
	}
	nodeAPI := field.NewPath("nodeAPI")
	if _, _, err := net.SplitHostPort(c.NodeAPI.Address); err != nil {
		p.invalid(nodeAPI.Child("address"), c.NodeAPI.Address, fmt.Sprintf("%q is not host:port", c.NodeAPI.Address), "for example 0.0.0.0:10250")
	}
	if a := c.NodeAPI.AdvertiseAddress; a != "" && net.ParseIP(a) == nil {
		p.invalid(nodeAPI.Child("advertiseAddress"), a, fmt.Sprintf("%q is not an IP address", a), "the IP address the API server reaches this agent at")
	}
	if c.NodeAPI.TLSCertFile == "" || c.NodeAPI.TLSKeyFile == "" {
		p.required(nodeAPI.Child("tlsCertFile/tlsKeyFile"), "are not both set", "a serving certificate and its key: the node API is HTTPS only")
	}
	if c.NodeAPI.ClientCAFile == "" {
		p.required(nodeAPI.Child("clientCAFile"), "is empty", "the CA that signs the API server's kubelet client certificate")
	}
	plugins := field.NewPath("plugins")
	if len(c.Plugins.Dirs) == 0 {
		p.required(plugins.Child("dirs"), "is empty", "at least one directory holding plugin binaries")
	}
	for _, name := range slices.Sorted(maps.Keys(c.Plugins.Checksums)) {
		if pin := c.Plugins.Checksums[name]; !sha256Pin.MatchString(pin) {
			p.invalid(plugins.Child("checksums").Child(name), pin, fmt.Sprintf("%q is not a pin", pin), `"sha256:" followed by 64 lowercase hex digits`)
		}
	}
	runtimes := p.plugins(field.NewPath("runtimes"), c.Runtimes)
	networks := p.plugins(field.NewPath("networks"), c.Networks)
	for i, ip := range c.ClusterDNS {
		if net.ParseIP(ip) == nil {
			p.invalid(field.NewPath("clusterDNS").Index(i), ip, fmt.Sprintf("%q is not an IP address", ip), "the cluster DNS Service's IP, such as 10.96.0.10")
		}
	}
	if d := c.ClusterDomain; d != "" {
		if why := notName(validation.IsDNS1123Subdomain, d); why != "" {
			p.invalid(field.NewPath("clusterDomain"), d, fmt.Sprintf("%q is not a DNS domain%s", d, why), "a domain such as cluster.local")
		}
	}
	if len(c.Nodes) == 0 && c.Members == nil {
		p.required(field.NewPath("nodes"), "is empty", "at least one node, or members")
	}
	if c.Members != nil {
		members := field.NewPath("members")
		if !runtimes[c.Members.Runtime] {
			p.invalid(members.Child("runtime"), c.Members.Runtime, fmt.Sprintf("%q names no runtime", c.Members.Runtime), fmt.Sprintf("one of the runtimes[].name: %s (a kubernetes plugin)", names(c.Runtimes)))
		}
		if why := notName(validation.IsDNS1123Label, c.Members.Namespace); why != "" {
			p.invalid(members.Child("namespace"), c.Members.Namespace, fmt.Sprintf("%q is not a namespace name%s", c.Members.Namespace, why), "a lowercase DNS label such as "+DefaultMembersNamespace)
		}
	}
	nodes := map[string]bool{}
	for i, n := range c.Nodes {
		path := field.NewPath("nodes").Index(i)
		if why := notName(validation.IsDNS1123Subdomain, n.Name); why != "" {
			p.invalid(path.Child("name"), n.Name, fmt.Sprintf("%q is not a valid node name%s", n.Name, why), "a lowercase DNS subdomain such as fedlet-node")
		} else if nodes[n.Name] {
			p.duplicate(path.Child("name"), n.Name, "a unique node name")
		}
		nodes[n.Name] = true
		if !runtimes[n.Runtime] {
			p.invalid(path.Child("runtime"), n.Runtime, fmt.Sprintf("%q names no runtime", n.Runtime), fmt.Sprintf("one of the runtimes[].name: %s", names(c.Runtimes)))
		}
		if n.Network != "" && !networks[n.Network] {
			p.invalid(path.Child("network"), n.Network, fmt.Sprintf("%q names no network", n.Network), fmt.Sprintf("one of the networks[].name: %s, or nothing", names(c.Networks)))
		}
		if n.PodCIDR != "" {
			if _, _, err := net.ParseCIDR(n.PodCIDR); err != nil {
				p.invalid(path.Child("podCIDR"), n.PodCIDR, fmt.Sprintf("%q is not a CIDR", n.PodCIDR), "an address range such as 10.244.1.0/24")
			}
		}
		for j, t := range n.Taints {
			taint := path.Child("taints").Index(j)
			if why := notName(validation.IsQualifiedName, t.Key); why != "" {
				p.invalid(taint.Child("key"), t.Key, fmt.Sprintf("%q is not a taint key%s", t.Key, why), "a qualified name such as example.com/dedicated")
			}
			if !slices.Contains(effects, t.Effect) {
				p.invalid(taint.Child("effect"), t.Effect, fmt.Sprintf("%q is not a taint effect", t.Effect), "NoSchedule, PreferNoSchedule or NoExecute")
			}
		}
	}
	return p.err()
}

// plugins checks the plugin processes listed at path and returns their
// names.
func (p *problems) plugins(path *field.Path, list []PluginProcess) map[string]bool {
	seen := map[string]bool{}
	for i, pp := range list {
		f := path.Index(i)
		switch {
		case pp.Name == "":
			p.required(f.Child("name"), "is empty", "a name that nodes refer to")
		case seen[pp.Name]:
			p.duplicate(f.Child("name"), pp.Name, "a unique name")
		}
		seen[pp.Name] = true
		if pp.Plugin == "" || strings.ContainsAny(pp.Plugin, `/\`) {
			p.invalid(f.Child("plugin"), pp.Plugin, fmt.Sprintf("%q is not a plugin name", pp.Plugin), "the file name of a plugin binary in plugins.dirs")
		}
		if len(pp.Config) > 0 && !json.Valid(pp.Config) {
			p.invalid(f.Child("config"), field.OmitValueType{}, "is not a mapping", "a mapping handed to the plugin")
		}
		if pp.CallTimeout != "" {
			if d, err := time.ParseDuration(pp.CallTimeout); err != nil || d < time.Second {
				p.invalid(f.Child("callTimeout"), pp.CallTimeout, fmt.Sprintf("%q is not a duration of a second or more", pp.CallTimeout), `a duration such as "30s" or "5m"`)
			}
		}
	}
	return seen
}

func names(rs []PluginProcess) string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Name)
	}
	if len(out) == 0 {
		return "(none defined)"
	}
	return strings.Join(out, ", ")
}

// explainDecodeError turns encoding/json's messages into field errors.
func explainDecodeError(err error) error {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		return Errors{field.TypeInvalid(field.NewPath(typeErr.Field), field.OmitValueType{},
			fmt.Sprintf("is a %s (expected a %s)", typeErr.Value, typeErr.Type))}
	}
	if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return Errors{field.Forbidden(field.NewPath(strings.Trim(f, `"`)), "is not a known field (expected only the fields documented in docs/configuration.md)")}
	}
	return fmt.Errorf("decode: %w", err)
}
