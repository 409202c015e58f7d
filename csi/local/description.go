package local

import (
	"context"
	"fmt"

	pluginv1 "github.com/fedlet/fedlet/plugins/proto/plugin/v1"
	"github.com/fedlet/fedlet/plugins/sdk"
)

// Description is the driver's configuration as the base protocol
// describes and checks it, under the agent.
func Description() sdk.Description {
	return sdk.Description{
		Config: []sdk.ConfigField{
			{Name: "stateDir", Type: sdk.TypeString, Required: true, Description: "the directory of the volumes' backing files and records (an absolute path)"},
			{Name: "nodeID", Type: sdk.TypeString, Description: "the node's CSI ID; the node the agent names when unset"},
			{Name: "maxVolumes", Type: sdk.TypeInteger, Default: fmt.Sprint(DefaultMaxVolumes), Description: "the most volumes the node stages"},
		},
		StrictConfig: true,
		Validate: func(config []byte, nodes []string) error {
			_, err := configFor(config, nodes)
			return err
		},
	}
}

// ConfigureFromHost configures the driver from the base protocol's
// Configure: its JSON configuration and the one node it serves.
func (d *Driver) ConfigureFromHost(_ context.Context, req *pluginv1.ConfigureRequest) error {
	cfg, err := configFor(req.GetConfig(), req.GetNodes())
	if err != nil {
		return err
	}
	return d.Configure(cfg)
}

// configFor is the configuration config gives for nodes: a driver serves
// one node, whose name is its node ID unless the configuration sets one.
func configFor(config []byte, nodes []string) (Config, error) {
	cfg, err := ParseConfig(config)
	if err != nil {
		return Config{}, err
	}
	if len(nodes) != 1 {
		return Config{}, fmt.Errorf("nodes: a local CSI driver serves exactly one node, %d given", len(nodes))
	}
	if cfg.NodeID == "" {
		cfg.NodeID = nodes[0]
	}
	return cfg, nil
}
