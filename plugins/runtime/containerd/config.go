package containerd

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"slices"
	"strings"

	"github.com/containerd/containerd/v2/pkg/identifiers"
	"k8s.io/apimachinery/pkg/api/resource"
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
// fields and fills in defaults. Errors name the offending field.
func ParseConfig(raw []byte) (Config, error) {
	var c Config
	if len(bytes.TrimSpace(raw)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c); err != nil {
			return Config{}, describeJSONError(err)
		}
		if _, err := dec.Token(); !errors.Is(err, io.EOF) {
			return Config{}, errors.New("config: unexpected data after the JSON object")
		}
	}
	if c.Address == "" {
		c.Address = DefaultAddress
	}
	if c.Namespace == "" {
		c.Namespace = DefaultNamespace
	}
	if err := identifiers.Validate(c.Namespace); err != nil {
		return Config{}, fmt.Errorf("config field namespace: %w", err)
	}
	if c.StateDir == "" {
		c.StateDir = DefaultStateDir
	}
	abs, err := filepath.Abs(c.StateDir)
	if err != nil {
		return Config{}, fmt.Errorf("config field stateDir: %w", err)
	}
	c.StateDir = abs
	if c.Snapshotter == "" {
		c.Snapshotter = DefaultSnapshotter
	}
	switch {
	case c.MaxPods == 0:
		c.MaxPods = DefaultMaxPods
	case c.MaxPods < 0:
		return Config{}, fmt.Errorf("config field maxPods: must be positive, got %d", c.MaxPods)
	}
	if c.NodeAddress == "" {
		c.NodeAddress = defaultNodeAddress()
	} else if net.ParseIP(c.NodeAddress) == nil {
		return Config{}, fmt.Errorf("config field nodeAddress: %q is not an IP address", c.NodeAddress)
	}
	c.reserved = map[string]resource.Quantity{}
	for name, v := range c.SystemReserved {
		if !slices.Contains(reservable, name) {
			return Config{}, fmt.Errorf("config field systemReserved.%s: not a reservable resource (expected one of %s)", name, strings.Join(reservable, ", "))
		}
		q, err := resource.ParseQuantity(v)
		if err != nil {
			return Config{}, fmt.Errorf("config field systemReserved.%s: %q is not a quantity: %v", name, v, err)
		}
		if q.Sign() < 0 {
			return Config{}, fmt.Errorf("config field systemReserved.%s: must not be negative, got %s", name, v)
		}
		c.reserved[name] = q
	}
	for i, r := range c.PlainHTTPRegistries {
		if r == "" || strings.ContainsAny(r, "/ ") {
			return Config{}, fmt.Errorf("config field plainHTTPRegistries[%d]: %q is not a host[:port]", i, r)
		}
	}
	return c, nil
}

// describeJSONError turns the decoder's errors into ones that name the field.
func describeJSONError(err error) error {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		return fmt.Errorf("config field %s: expected %s, got JSON %s", typeErr.Field, typeErr.Type, typeErr.Value)
	}
	// The decoder reports an unknown field as `json: unknown field "x"`.
	if msg := err.Error(); strings.HasPrefix(msg, "json: unknown field ") {
		return fmt.Errorf("config: unknown field %s", strings.TrimPrefix(msg, "json: unknown field "))
	}
	return fmt.Errorf("config: %w", err)
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
