package sdk_test

import (
	"encoding/json"
	"errors"
	"strings"

	"github.com/fedlet/fedlet/plugins/sdk"
)

// tinyConfig is the configuration of the tiny runtime of ExampleServeRuntime.
type tinyConfig struct {
	Root string `json:"root"`
}

// parseTinyConfig is the plugin's own parser: Configure uses it, and so does
// the base protocol's ValidateConfig, through the Description. Its
// ConfigErrors name the field and the fix, which the agent shows as
// "runtimes[0].config.root: ... (fix: ...)" and refuses to start.
func parseTinyConfig(raw []byte) (tinyConfig, error) {
	var c tinyConfig
	if err := json.Unmarshal(raw, &c); err != nil {
		return c, &sdk.ConfigError{Message: err.Error()}
	}
	var errs []error
	if !strings.HasPrefix(c.Root, "/") {
		errs = append(errs, &sdk.ConfigError{Field: "root", Message: "not an absolute path", Fix: "give the directory's absolute path"})
	}
	return c, errors.Join(errs...)
}

// A plugin describes its configuration once; the SDK serves it through the
// base protocol, which every family shares, so the agent checks a
// configuration before it starts any node.
func ExampleWithDescription() {
	sdk.ServeRuntime(tinyRuntime{}, sdk.WithDescription(sdk.Description{
		Config: []sdk.ConfigField{
			{Name: "root", Type: sdk.TypeString, Required: true, Description: "where the runtime keeps its pods"},
		},
		StrictConfig: true,
		Validate: func(config []byte, _ []string) error {
			_, err := parseTinyConfig(config)
			return err
		},
	}))
}
