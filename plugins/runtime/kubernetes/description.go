package kubernetes

import "github.com/fedlet/fedlet/plugins/sdk"

// Description is what the plugin says of its configuration through the
// base protocol (sdk.WithDescription): its fields, and ParseConfig as the
// check that names each wrong field and its fix, so that the agent refuses
// a wrong config before it starts anything. Members that come with
// node_settings are checked by Configure, since only it receives them.
func Description() sdk.Description {
	return sdk.Description{
		Config: []sdk.ConfigField{
			{Name: "origin", Type: sdk.TypeString, Required: true, Description: "the hub cluster's name, labelled on everything the plugin creates in a member"},
			{Name: "members", Type: sdk.TypeArray, Description: `the member clusters whose kubeconfig is a file: [{"node", "kubeconfig", "namespace"}]`},
			{Name: "hub", Type: sdk.TypeObject, Description: `how to read the hub's Services to reflect them into members: {"kubeconfig", "apiServer"}`},
		},
		StrictConfig: true,
		Validate: func(config []byte, _ []string) error {
			_, err := ParseConfig(config)
			return err
		},
	}
}
