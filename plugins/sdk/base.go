package sdk

import (
	"context"
	"errors"
	"sync"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	pluginv1 "github.com/fedlet/fedlet/plugins/proto/plugin/v1"
)

// Description is what a plugin says of itself through the base protocol
// (package pluginv1, fedlet.plugin.v1), which ServeRuntime and ServeNetwork
// serve for every plugin beside its family's service. Every field is
// optional: a plugin served without WithDescription is described by its
// family's own Describe, and its configuration is checked by Configure only.
type Description struct {
	// Name and Version name the plugin; empty, they are what the family
	// service's Describe answers.
	Name    string
	Version string
	// Capabilities are the plugin's optional capabilities as its family's
	// protocol names them ("CAPABILITY_WHOLE_PODS"); nil, they are what the
	// family service's Describe answers.
	Capabilities []string
	// Config lists the top-level fields of the plugin's JSON configuration.
	// ValidateConfig checks their JSON types and that the required ones are
	// set, before Validate runs.
	Config []ConfigField
	// StrictConfig makes a field that Config does not list a violation.
	StrictConfig bool
	// Validate checks a configuration as Configure would read it, without
	// applying it, for the nodes it would serve. Each *ConfigError in the
	// error it returns (alone, wrapped, or among errors.Join's) is one
	// violation naming its field; any other error is a violation of the
	// configuration as a whole. Usually the plugin's own config parser.
	Validate func(config []byte, nodes []string) error
}

// ConfigField is one top-level field of a plugin's JSON configuration.
type ConfigField struct {
	// Name is the field's JSON name.
	Name string
	// Type is its JSON type: one of the FieldType constants.
	Type FieldType
	// Required says that the configuration must set it.
	Required bool
	// Default is the value used when it is not set, as JSON ("110"); empty
	// when there is none.
	Default string
	// Description says what the field means.
	Description string
}

// FieldType is a JSON type of a configuration field.
type FieldType string

// The JSON types of configuration fields.
const (
	TypeString  FieldType = "string"
	TypeNumber  FieldType = "number"
	TypeInteger FieldType = "integer"
	TypeBoolean FieldType = "boolean"
	TypeObject  FieldType = "object"
	TypeArray   FieldType = "array"
)

// WithDescription serves d through the base protocol: the plugin's name,
// version, capabilities and configuration fields, and its validation
// function.
func WithDescription(d Description) ServeOption {
	return func(c *serveConfig) { c.description = d }
}

// familyHooks are what the base protocol's server needs from the family
// service it is served beside.
type familyHooks struct {
	// name is the family's name: "runtime", "network".
	name string
	// describe is the family service's own Describe, in the base's terms.
	describe func(ctx context.Context) (*pluginv1.DescribeResponse, error)
	// configure is the family service's own Configure, fed from the base's
	// request: so whatever wraps the family's implementation sees every
	// Configure, whichever protocol the host used.
	configure func(ctx context.Context, req *pluginv1.ConfigureRequest) error
}

// baseServer serves the base protocol from a Description and the family
// service's own Describe and Configure.
type baseServer struct {
	pluginv1.UnimplementedPluginServer
	desc   Description
	family familyHooks
}

// Describe answers the Description, completed from the family service's
// Describe where it is empty.
func (s *baseServer) Describe(ctx context.Context, _ *pluginv1.DescribeRequest) (*pluginv1.DescribeResponse, error) {
	resp := &pluginv1.DescribeResponse{
		Name:         s.desc.Name,
		Version:      s.desc.Version,
		Family:       s.family.name,
		Capabilities: s.desc.Capabilities,
		Config:       schemaOf(s.desc),
	}
	if resp.Name == "" || resp.Version == "" || resp.Capabilities == nil {
		fam, err := s.family.describe(ctx)
		if err != nil {
			return nil, err
		}
		if resp.Name == "" {
			resp.Name = fam.GetName()
		}
		if resp.Version == "" {
			resp.Version = fam.GetVersion()
		}
		if resp.Capabilities == nil {
			resp.Capabilities = fam.GetCapabilities()
		}
	}
	return resp, nil
}

// Configure hands the request to the family service's Configure.
func (s *baseServer) Configure(ctx context.Context, req *pluginv1.ConfigureRequest) (*pluginv1.ConfigureResponse, error) {
	if err := s.family.configure(ctx, req); err != nil {
		return nil, err
	}
	return &pluginv1.ConfigureResponse{}, nil
}

// ValidateConfig checks the fields the Description lists, then, when they
// are right, runs its Validate.
func (s *baseServer) ValidateConfig(_ context.Context, req *pluginv1.ValidateConfigRequest) (*pluginv1.ValidateConfigResponse, error) {
	violations := checkFields(req.GetConfig(), s.desc.Config, s.desc.StrictConfig)
	if len(violations) == 0 && s.desc.Validate != nil {
		violations = Violations(s.desc.Validate(req.GetConfig(), req.GetNodes()))
	}
	return &pluginv1.ValidateConfigResponse{Violations: violations}, nil
}

func schemaOf(d Description) *pluginv1.ConfigSchema {
	if len(d.Config) == 0 && !d.StrictConfig {
		return nil
	}
	schema := &pluginv1.ConfigSchema{Strict: d.StrictConfig}
	for _, f := range d.Config {
		schema.Fields = append(schema.Fields, &pluginv1.ConfigField{
			Name:        f.Name,
			Type:        string(f.Type),
			Required:    f.Required,
			Default:     f.Default,
			Description: f.Description,
		})
	}
	return schema
}

// withBase serves the base protocol on the gRPC server of every plugin in
// versions, beside the family's service: go-plugin gives each plugin of a
// set the one server of the process.
func withBase(versions map[int]plugin.PluginSet, base pluginv1.PluginServer) map[int]plugin.PluginSet {
	var once sync.Once
	out := make(map[int]plugin.PluginSet, len(versions))
	for v, set := range versions {
		out[v] = plugin.PluginSet{}
		for name, p := range set {
			gp, ok := p.(plugin.GRPCPlugin)
			if !ok {
				out[v][name] = p
				continue
			}
			out[v][name] = &baseAndFamily{GRPCPlugin: gp, register: func(s *grpc.Server) {
				once.Do(func() { pluginv1.RegisterPluginServer(s, base) })
			}}
		}
	}
	return out
}

// baseAndFamily is a family's go-plugin plugin that also registers the base
// protocol on the server.
type baseAndFamily struct {
	plugin.GRPCPlugin
	plugin.NetRPCUnsupportedPlugin
	register func(*grpc.Server)
}

func (p *baseAndFamily) GRPCServer(b *plugin.GRPCBroker, s *grpc.Server) error {
	if s == nil {
		return errors.New("no gRPC server to serve on")
	}
	p.register(s)
	return p.GRPCPlugin.GRPCServer(b, s)
}
