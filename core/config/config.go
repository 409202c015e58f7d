// Package config reads and validates the agent's YAML configuration.
package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"sigs.k8s.io/yaml"
)

// APIVersion and Kind identify the agent's config file.
const (
	APIVersion = "fedlet.io/v1alpha1"
	Kind       = "AgentConfig"
)

// Agent is the whole configuration of one agent process.
type Agent struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	// Kubeconfig is the path of the kubeconfig the agent uses to reach the API server.
	Kubeconfig string `json:"kubeconfig"`
	// StateDir holds what the agent makes on the node: the pods' volumes
	// (Secrets, ConfigMaps, service-account tokens, emptyDirs) under pods/.
	StateDir string  `json:"stateDir,omitempty"`
	NodeAPI  NodeAPI `json:"nodeAPI"`
	Plugins  Plugins `json:"plugins"`
	// Runtimes are the runtime plugin processes; nodes that name the same runtime share its process.
	Runtimes []Runtime `json:"runtimes"`
	// Networks are the network plugin processes; nodes that name the same network share its process.
	Networks []Network `json:"networks,omitempty"`
	Nodes    []Node    `json:"nodes"`
	// Members, if set, makes every member cluster added with `fedlet member
	// add` a virtual node of the agent.
	Members *Members `json:"members,omitempty"`
	// ClusterDNS are the cluster DNS servers pods are given by their dnsPolicy
	// (the kubelet's clusterDNS); none means pods use the host's resolver.
	ClusterDNS []string `json:"clusterDNS,omitempty"`
	// ClusterDomain is the cluster's DNS domain; "cluster.local" if unset.
	ClusterDomain string `json:"clusterDomain,omitempty"`
}

// NodeAPI is the kubelet-compatible HTTPS server that serves logs to the API server.
type NodeAPI struct {
	Address string `json:"address"`
	// AdvertiseAddress is where the API server reaches this agent's node
	// API for nodes whose backend reports no address of its own (a member
	// cluster's virtual node). Default: address's host, or this machine's
	// first non-loopback IPv4 address when that is unspecified.
	AdvertiseAddress string `json:"advertiseAddress,omitempty"`
	TLSCertFile      string `json:"tlsCertFile"`
	TLSKeyFile       string `json:"tlsKeyFile"`
	ClientCAFile     string `json:"clientCAFile"`
}

// Plugins says where plugin binaries are and how they are pinned.
type Plugins struct {
	Dirs []string `json:"dirs"`
	// Checksums pins plugin binaries by name to "sha256:<hex>".
	Checksums map[string]string `json:"checksums,omitempty"`
}

// Runtime is one runtime plugin process.
type Runtime = PluginProcess

// Network is one network plugin process.
type Network = PluginProcess

// PluginProcess is one plugin process that nodes refer to by name.
type PluginProcess struct {
	Name   string `json:"name"`
	Plugin string `json:"plugin"`
	// Config is handed to the plugin as JSON, unread by the agent.
	Config json.RawMessage `json:"config,omitempty"`
	// CallTimeout bounds each call the agent makes to the plugin that has no
	// bound of its own (a container's stop has its grace period; log, exec,
	// attach and port-forward streams last as long as their clients), such
	// as "30s" or "5m"; 2 minutes, the kubelet's runtime request timeout,
	// if unset. An image pull is one call. A call that takes longer fails,
	// and the pod it was for gets a status saying so.
	CallTimeout string `json:"callTimeout,omitempty"`
}

// Timeout is CallTimeout as a duration, zero when unset (the plugin host's
// default); call it on a validated config.
func (p PluginProcess) Timeout() time.Duration {
	d, _ := time.ParseDuration(p.CallTimeout)
	return d
}

// Node is one Node the agent registers.
type Node struct {
	Name    string `json:"name"`
	Runtime string `json:"runtime"`
	// Network names the network plugin that attaches the node's pods; empty
	// for none (pods have a loopback only, unless the runtime networks them).
	Network string `json:"network,omitempty"`
	// PodCIDR is the node's pod address range when the controller-manager
	// allocates none (the Node's spec.podCIDR wins when set).
	PodCIDR string            `json:"podCIDR,omitempty"`
	Labels  map[string]string `json:"labels,omitempty"`
	Taints  []Taint           `json:"taints,omitempty"`
}

// Members says how the agent serves the member clusters kept as Secrets in
// the API server (`fedlet member add`): each is a virtual node named after
// it, labelled fedlet.io/member=NAME and tainted
// virtual-kubelet.io/provider=fedlet:NoSchedule.
type Members struct {
	// Runtime names the runtime plugin (the kubernetes plugin) that serves
	// the members' virtual nodes.
	Runtime string `json:"runtime"`
	// Namespace holds the members' Secrets; DefaultMembersNamespace if unset.
	Namespace string `json:"namespace,omitempty"`
}

// DefaultStateDir is the agent's StateDir when the config names none.
const DefaultStateDir = "/var/lib/fedlet"

// DefaultMembersNamespace is where `fedlet member add` keeps members.
const DefaultMembersNamespace = "fedlet-system"

// Taint is a Node taint, as in the Node's spec.
type Taint struct {
	Key    string `json:"key"`
	Value  string `json:"value,omitempty"`
	Effect string `json:"effect"`
}

// Load reads, decodes (rejecting unknown fields), defaults and validates a config file.
func Load(path string) (*Agent, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	cfg, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

// Parse decodes, defaults and validates a config document.
func Parse(data []byte) (*Agent, error) {
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, fmt.Errorf("not valid YAML: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	var cfg Agent
	if err := dec.Decode(&cfg); err != nil {
		return nil, explainDecodeError(err)
	}
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &cfg, nil
}

func (c *Agent) setDefaults() {
	if c.NodeAPI.Address == "" {
		c.NodeAPI.Address = "0.0.0.0:10250"
	}
	if c.StateDir == "" {
		c.StateDir = DefaultStateDir
	}
	if c.Members != nil && c.Members.Namespace == "" {
		c.Members.Namespace = DefaultMembersNamespace
	}
}
