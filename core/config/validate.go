package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// FieldError names the field that is wrong and what is expected of it.
type FieldError struct {
	Field    string
	Problem  string
	Expected string
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("%s: %s (expected %s)", e.Field, e.Problem, e.Expected)
}

var (
	dnsSubdomain = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
	dnsLabel     = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)
	sha256Pin    = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
	effects      = map[string]bool{"NoSchedule": true, "PreferNoSchedule": true, "NoExecute": true}
)

// Validate checks every field and returns all problems found, each naming its field.
func (c *Agent) Validate() error {
	var errs []error
	add := func(field, problem, expected string) {
		errs = append(errs, &FieldError{Field: field, Problem: problem, Expected: expected})
	}
	if c.APIVersion != APIVersion {
		add("apiVersion", fmt.Sprintf("is %q", c.APIVersion), fmt.Sprintf("%q", APIVersion))
	}
	if c.Kind != Kind {
		add("kind", fmt.Sprintf("is %q", c.Kind), fmt.Sprintf("%q", Kind))
	}
	if !filepath.IsAbs(c.StateDir) {
		add("stateDir", fmt.Sprintf("%q is not an absolute path", c.StateDir), "a directory such as "+DefaultStateDir)
	}
	if c.Kubeconfig == "" {
		add("kubeconfig", "is empty", "the path of a kubeconfig for the API server")
	}
	if _, _, err := net.SplitHostPort(c.NodeAPI.Address); err != nil {
		add("nodeAPI.address", fmt.Sprintf("%q is not host:port", c.NodeAPI.Address), "for example 0.0.0.0:10250")
	}
	if a := c.NodeAPI.AdvertiseAddress; a != "" && net.ParseIP(a) == nil {
		add("nodeAPI.advertiseAddress", fmt.Sprintf("%q is not an IP address", a), "the IP address the API server reaches this agent at")
	}
	if c.NodeAPI.TLSCertFile == "" || c.NodeAPI.TLSKeyFile == "" {
		add("nodeAPI.tlsCertFile/tlsKeyFile", "are not both set", "a serving certificate and its key: the node API is HTTPS only")
	}
	if c.NodeAPI.ClientCAFile == "" {
		add("nodeAPI.clientCAFile", "is empty", "the CA that signs the API server's kubelet client certificate")
	}
	if len(c.Plugins.Dirs) == 0 {
		add("plugins.dirs", "is empty", "at least one directory holding plugin binaries")
	}
	for name, pin := range c.Plugins.Checksums {
		if !sha256Pin.MatchString(pin) {
			add("plugins.checksums."+name, fmt.Sprintf("%q is not a pin", pin), `"sha256:" followed by 64 lowercase hex digits`)
		}
	}
	runtimes := validatePlugins("runtimes", c.Runtimes, add)
	networks := validatePlugins("networks", c.Networks, add)
	for i, ip := range c.ClusterDNS {
		if net.ParseIP(ip) == nil {
			add(fmt.Sprintf("clusterDNS[%d]", i), fmt.Sprintf("%q is not an IP address", ip), "the cluster DNS Service's IP, such as 10.96.0.10")
		}
	}
	if c.ClusterDomain != "" && !dnsSubdomain.MatchString(c.ClusterDomain) {
		add("clusterDomain", fmt.Sprintf("%q is not a DNS domain", c.ClusterDomain), "a domain such as cluster.local")
	}
	if len(c.Nodes) == 0 && c.Members == nil {
		add("nodes", "is empty", "at least one node, or members")
	}
	if c.Members != nil {
		if !runtimes[c.Members.Runtime] {
			add("members.runtime", fmt.Sprintf("%q names no runtime", c.Members.Runtime), fmt.Sprintf("one of the runtimes[].name: %s (a kubernetes plugin)", names(c.Runtimes)))
		}
		if !dnsLabel.MatchString(c.Members.Namespace) {
			add("members.namespace", fmt.Sprintf("%q is not a namespace name", c.Members.Namespace), "a lowercase DNS label such as "+DefaultMembersNamespace)
		}
	}
	nodes := map[string]bool{}
	for i, n := range c.Nodes {
		field := fmt.Sprintf("nodes[%d]", i)
		switch {
		case !dnsSubdomain.MatchString(n.Name) || len(n.Name) > 253:
			add(field+".name", fmt.Sprintf("%q is not a valid node name", n.Name), "a lowercase DNS subdomain such as fedlet-node")
		case nodes[n.Name]:
			add(field+".name", fmt.Sprintf("%q is used twice", n.Name), "a unique node name")
		}
		nodes[n.Name] = true
		if !runtimes[n.Runtime] {
			add(field+".runtime", fmt.Sprintf("%q names no runtime", n.Runtime), fmt.Sprintf("one of the runtimes[].name: %s", names(c.Runtimes)))
		}
		if n.Network != "" && !networks[n.Network] {
			add(field+".network", fmt.Sprintf("%q names no network", n.Network), fmt.Sprintf("one of the networks[].name: %s, or nothing", names(c.Networks)))
		}
		if n.PodCIDR != "" {
			if _, _, err := net.ParseCIDR(n.PodCIDR); err != nil {
				add(field+".podCIDR", fmt.Sprintf("%q is not a CIDR", n.PodCIDR), "an address range such as 10.244.1.0/24")
			}
		}
		for j, t := range n.Taints {
			if t.Key == "" || !effects[t.Effect] {
				add(fmt.Sprintf("%s.taints[%d]", field, j), fmt.Sprintf("key %q effect %q", t.Key, t.Effect), "a key and an effect of NoSchedule, PreferNoSchedule or NoExecute")
			}
		}
	}
	return errors.Join(errs...)
}

// validatePlugins checks the plugin processes listed under field and
// returns their names.
func validatePlugins(field string, list []PluginProcess, add func(field, problem, expected string)) map[string]bool {
	seen := map[string]bool{}
	for i, p := range list {
		f := fmt.Sprintf("%s[%d]", field, i)
		switch {
		case p.Name == "":
			add(f+".name", "is empty", "a name that nodes refer to")
		case seen[p.Name]:
			add(f+".name", fmt.Sprintf("%q is used twice", p.Name), "a unique name")
		}
		seen[p.Name] = true
		if p.Plugin == "" || strings.ContainsAny(p.Plugin, `/\`) {
			add(f+".plugin", fmt.Sprintf("%q is not a plugin name", p.Plugin), "the file name of a plugin binary in plugins.dirs")
		}
		if len(p.Config) > 0 && !json.Valid(p.Config) {
			add(f+".config", "is not a mapping", "a mapping handed to the plugin")
		}
		if p.CallTimeout != "" {
			if d, err := time.ParseDuration(p.CallTimeout); err != nil || d < time.Second {
				add(f+".callTimeout", fmt.Sprintf("%q is not a duration of a second or more", p.CallTimeout), `a duration such as "30s" or "5m"`)
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

// explainDecodeError turns encoding/json's messages into ones that name the field.
func explainDecodeError(err error) error {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		return &FieldError{Field: typeErr.Field, Problem: "is a " + typeErr.Value, Expected: "a " + typeErr.Type.String()}
	}
	msg := err.Error()
	if f, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		return &FieldError{Field: strings.Trim(f, `"`), Problem: "is not a known field", Expected: "only the fields documented in docs/configuration.md"}
	}
	return fmt.Errorf("decode: %w", err)
}
