package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/fedlet/fedlet/core/config"
	"github.com/fedlet/fedlet/plugins/pluginhost"
)

// checkPluginConfigs has every plugin that will serve a node check its own
// configuration (the base protocol's ValidateConfig) before the agent
// registers any node, so that a wrong one stops the agent with the field as
// the config file spells it ("runtimes[0].config.address") and the fix,
// instead of nodes that stay NotReady. A check that cannot be made (a
// missing binary) is logged: the plugin's start reports it on the nodes.
func checkPluginConfigs(ctx context.Context, host *pluginhost.Host, cfg *config.Agent, log *slog.Logger) error {
	type check struct {
		at     string // where the plugin's config sits in the config file
		family pluginhost.AnyFamily
		spec   pluginhost.PluginSpec
	}
	var checks []check
	for i, nc := range cfg.Networks {
		if nodes := networkNodes(cfg, nc.Name); len(nodes) > 0 {
			checks = append(checks, check{fmt.Sprintf("networks[%d].config", i), pluginhost.NetworkFamily,
				pluginhost.PluginSpec{Name: nc.Name, Plugin: nc.Plugin, Config: nc.Config, Nodes: nodes}})
		}
	}
	for i, rc := range cfg.Runtimes {
		nodes := runtimeNodeNames(cfg, rc.Name)
		if len(nodes) > 0 || (cfg.Members != nil && cfg.Members.Runtime == rc.Name) {
			checks = append(checks, check{fmt.Sprintf("runtimes[%d].config", i), pluginhost.RuntimeFamily,
				pluginhost.PluginSpec{Name: rc.Name, Plugin: rc.Plugin, Config: rc.Config, Nodes: nodes}})
		}
	}

	errs := make([]error, len(checks))
	var wg sync.WaitGroup
	for i, c := range checks {
		wg.Go(func() {
			err := host.CheckConfig(ctx, c.family, c.spec)
			var ce *pluginhost.ConfigError
			switch {
			case errors.As(err, &ce):
				errs[i] = fieldErrors(c.at, ce)
			case err != nil:
				log.Warn("could not check the plugin's config before starting it", "plugin", c.spec.Name, "err", err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// fieldErrors says each violation of ce with its field below at.
func fieldErrors(at string, ce *pluginhost.ConfigError) error {
	lines := make([]string, len(ce.Violations))
	for i, v := range ce.Violations {
		lines[i] = pluginhost.FormatViolation(at, v)
	}
	return fmt.Errorf("plugin %s refuses its config: %s", ce.Plugin, strings.Join(lines, "; "))
}

// networkNodes are the names of the nodes whose network is the plugin
// process called name.
func networkNodes(cfg *config.Agent, name string) []string {
	var out []string
	for _, n := range cfg.Nodes {
		if n.Network == name {
			out = append(out, n.Name)
		}
	}
	return out
}

// runtimeNodeNames are the names of the configured nodes whose runtime is
// the plugin process called name.
func runtimeNodeNames(cfg *config.Agent, name string) []string {
	var out []string
	for _, n := range cfg.Nodes {
		if n.Runtime == name {
			out = append(out, n.Name)
		}
	}
	return out
}
