package containerd

import (
	"strconv"

	"github.com/fedlet/fedlet/plugins/sdk"
)

// Description is what the plugin says of its configuration through the
// base protocol (sdk.WithDescription): its fields, and ParseConfig as the
// check that names each wrong field and its fix, so that the agent refuses
// a wrong config before it starts anything.
func Description() sdk.Description {
	return sdk.Description{
		Config: []sdk.ConfigField{
			{Name: "address", Type: sdk.TypeString, Default: strconv.Quote(DefaultAddress), Description: "containerd's gRPC socket"},
			{Name: "namespace", Type: sdk.TypeString, Default: strconv.Quote(DefaultNamespace), Description: "the containerd namespace of every object the plugin makes"},
			{Name: "stateDir", Type: sdk.TypeString, Default: strconv.Quote(DefaultStateDir), Description: "where container logs and the files mounted into pods are kept"},
			{Name: "snapshotter", Type: sdk.TypeString, Default: strconv.Quote(DefaultSnapshotter), Description: "the snapshotter that unpacks images and holds root filesystems"},
			{Name: "plainHTTPRegistries", Type: sdk.TypeArray, Description: `registries ("host:port") spoken to over plain HTTP; loopback ones always are`},
			{Name: "maxPods", Type: sdk.TypeInteger, Default: strconv.Itoa(DefaultMaxPods), Description: "the node's pod capacity"},
			{Name: "nodeAddress", Type: sdk.TypeString, Description: "the InternalIP the node advertises; the first non-loopback IPv4 address if unset"},
			{Name: "systemReserved", Type: sdk.TypeObject, Description: `what the node keeps for the host, by resource ("cpu", "memory", "ephemeral-storage"), as Kubernetes quantities`},
			{Name: "allowPrivileged", Type: sdk.TypeBoolean, Default: "false", Description: "whether pods may run privileged containers"},
		},
		StrictConfig: true,
		Validate: func(config []byte, _ []string) error {
			_, err := ParseConfig(config)
			return err
		},
	}
}

// configFieldNames are the JSON names of Config's fields.
func configFieldNames() []string {
	var names []string
	for _, f := range Description().Config {
		names = append(names, f.Name)
	}
	return names
}
