package containerd

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"path/filepath"
	"slices"
	"strings"

	"github.com/containerd/containerd/v2/pkg/identifiers"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/fedlet/fedlet/plugins/sdk"
)

// Config is the plugin's configuration, given as JSON to Configure.
type Config struct {
	// Address is containerd's gRPC socket.
	Address string `json:"address"`
	// Namespace is the containerd namespace of every object the plugin
	// makes.
	Namespace string `json:"namespace"`
	// StateDir holds container logs and the files mounted into pods.
	StateDir string `json:"stateDir"`
	// Snapshotter unpacks images and holds container root filesystems.
	Snapshotter string `json:"snapshotter"`
	// PlainHTTPRegistries are registries ("host:port") spoken to over plain
	// HTTP. Loopback registries always are.
	PlainHTTPRegistries []string `json:"plainHTTPRegistries"`
	// MaxPods is the node's pod capacity.
	MaxPods int `json:"maxPods"`
	// NodeAddress is the InternalIP the node advertises.
	NodeAddress string `json:"nodeAddress"`
	// SystemReserved is what the node keeps for the host itself, by
	// resource ("cpu", "memory", "ephemeral-storage") in Kubernetes quantity
	// syntax: the Node's allocatable is its capacity minus this, as the
	// kubelet's --system-reserved. Empty reserves nothing.
	SystemReserved map[string]string `json:"systemReserved"`
	// AllowPrivileged lets pods run privileged containers. Without it a
	// privileged container is refused (PermissionDenied).
	AllowPrivileged bool `json:"allowPrivileged"`

	// reserved is SystemReserved parsed.
	reserved map[string]resource.Quantity
}

// reservable are the resources SystemReserved may name.
var reservable = []string{"cpu", "memory", "ephemeral-storage"}

// Defaults of Config.
const (
	DefaultAddress     = "/run/containerd/containerd.sock"
	DefaultNamespace   = "fedlet"
	DefaultStateDir    = "/var/lib/fedlet/containerd"
	DefaultSnapshotter = "overlayfs"
	DefaultMaxPods     = 110
)

// ParseConfig decodes raw (empty means all defaults), rejects unknown
// fields and fills in defaults. Errors are *sdk.ConfigError, each naming the
// offending field and its fix; after a successful decode every wrong field
// is reported (errors.Join), not only the first.
func ParseConfig(raw []byte) (Config, error) {
	var c Config
	if len(bytes.TrimSpace(raw)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c); err != nil {
			return Config{}, describeJSONError(err)
		}
		if _, err := dec.Token(); !errors.Is(err, io.EOF) {
			return Config{}, &sdk.ConfigError{Message: "unexpected data after the JSON object", Fix: "give one JSON object"}
		}
	}
	var errs []error
	fail := func(field, fix, format string, args ...any) {
		errs = append(errs, &sdk.ConfigError{Field: field, Message: fmt.Sprintf(format, args...), Fix: fix})
	}
	if c.Address == "" {
		c.Address = DefaultAddress
	}
	if c.Namespace == "" {
		c.Namespace = DefaultNamespace
	}
	if err := identifiers.Validate(c.Namespace); err != nil {
		fail("namespace", "use letters, digits, '.', '_' and '-', starting with a letter or digit (default "+DefaultNamespace+")", "%v", err)
	}
	if c.StateDir == "" {
		c.StateDir = DefaultStateDir
	}
	if abs, err := filepath.Abs(c.StateDir); err != nil {
		fail("stateDir", "give an absolute directory", "%v", err)
	} else {
		c.StateDir = abs
	}
	if c.Snapshotter == "" {
		c.Snapshotter = DefaultSnapshotter
	}
	switch {
	case c.MaxPods == 0:
		c.MaxPods = DefaultMaxPods
	case c.MaxPods < 0:
		fail("maxPods", fmt.Sprintf("give a positive number, or leave it out for %d", DefaultMaxPods), "must be positive, got %d", c.MaxPods)
	}
	if c.NodeAddress == "" {
		c.NodeAddress = defaultNodeAddress()
	} else if net.ParseIP(c.NodeAddress) == nil {
		fail("nodeAddress", "give the node's IPv4 or IPv6 address, or leave it out for the first non-loopback one", "%q is not an IP address", c.NodeAddress)
	}
	c.reserved = map[string]resource.Quantity{}
	for _, name := range slices.Sorted(maps.Keys(c.SystemReserved)) {
		v, field := c.SystemReserved[name], "systemReserved."+name
		if !slices.Contains(reservable, name) {
			fail(field, "reserve only "+strings.Join(reservable, ", "), "not a reservable resource (expected one of %s)", strings.Join(reservable, ", "))
			continue
		}
		q, err := resource.ParseQuantity(v)
		if err != nil {
			fail(field, `give a Kubernetes quantity such as "500m" or "256Mi"`, "%q is not a quantity: %v", v, err)
			continue
		}
		if q.Sign() < 0 {
			fail(field, "reserve zero or more", "must not be negative, got %s", v)
			continue
		}
		c.reserved[name] = q
	}
	for i, r := range c.PlainHTTPRegistries {
		if r == "" || strings.ContainsAny(r, "/ ") {
			fail(fmt.Sprintf("plainHTTPRegistries[%d]", i), `give the registry as host[:port], without a scheme or path ("registry.local:5000")`, "%q is not a host[:port]", r)
		}
	}
	if len(errs) > 0 {
		return Config{}, errors.Join(errs...)
	}
	return c, nil
}

// describeJSONError turns the decoder's errors into ones that name the field.
func describeJSONError(err error) error {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		return &sdk.ConfigError{Field: typeErr.Field, Message: fmt.Sprintf("expected %s, got JSON %s", typeErr.Type, typeErr.Value),
			Fix: fmt.Sprintf("give %s a JSON %s", typeErr.Field, typeErr.Type)}
	}
	// The decoder reports an unknown field as `json: unknown field "x"`.
	if msg := err.Error(); strings.HasPrefix(msg, "json: unknown field ") {
		return &sdk.ConfigError{Message: "unknown field " + strings.TrimPrefix(msg, "json: unknown field "),
			Fix: "remove it, or correct its spelling: the fields are " + strings.Join(configFieldNames(), ", ")}
	}
	return &sdk.ConfigError{Message: err.Error(), Fix: "give a JSON object"}
}

// defaultNodeAddress is the first non-loopback IPv4 address of an up
// interface, else 127.0.0.1.
func defaultNodeAddress() string {
	ifaces, err := net.Interfaces()
	if err != nil {
		return "127.0.0.1"
	}
	for _, iface := range ifaces {
		if iface.Flags&net.FlagUp == 0 || iface.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, err := iface.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() {
				return n.IP.String()
			}
		}
	}
	return "127.0.0.1"
}
