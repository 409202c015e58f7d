package pluginhost

import (
	"context"
	"fmt"
	"strings"

	pluginv1 "github.com/fedlet/fedlet/plugins/proto/plugin/v1"
)

// ConfigError says that a plugin found its configuration wrong, through the
// base protocol's ValidateConfig.
type ConfigError struct {
	// Plugin is the process's name (PluginSpec.Name).
	Plugin string
	// Violations each name a field as a path into the plugin's JSON
	// configuration, what is wrong with it and how to fix it.
	Violations []*pluginv1.Violation
}

// Error lists every violation: "plugin mem: config field address: ...
// (fix: ...)".
func (e *ConfigError) Error() string {
	parts := make([]string, len(e.Violations))
	for i, v := range e.Violations {
		parts[i] = FormatViolation("", v)
	}
	return fmt.Sprintf("plugin %s: %s", e.Plugin, strings.Join(parts, "; "))
}

// FormatViolation says v with its field as a path below base, where the
// plugin's configuration sits in a file ("runtimes[0].config" gives
// "runtimes[0].config.address: MESSAGE (fix: FIX)"); an empty base gives
// "config field address: MESSAGE (fix: FIX)".
func FormatViolation(base string, v *pluginv1.Violation) string {
	var s string
	switch field := v.GetField(); {
	case base == "" && field == "":
		s = "config"
	case base == "":
		s = "config field " + field
	case field == "" || strings.HasPrefix(field, "["):
		s = base + field
	default:
		s = base + "." + field
	}
	s += ": " + v.GetMessage()
	if v.GetFix() != "" {
		s += " (fix: " + v.GetFix() + ")"
	}
	return s
}

// CheckConfig launches a throw-away process of spec as a plugin of family
// f, asks it to check spec's configuration (the base protocol's
// ValidateConfig) and stops it, so that a caller can refuse a wrong
// configuration before it starts anything. The plugin's violations are a
// *ConfigError; a plugin without the base protocol checks nothing, and nil
// is returned. Other errors say that the check could not be made.
func (h *Host) CheckConfig(ctx context.Context, f AnyFamily, spec PluginSpec) error {
	fam := f.family()
	p := &process{host: h, fam: fam, spec: spec, log: h.log.With("plugin", spec.Name)}
	inst, path, _, err := p.open()
	if err != nil {
		return fmt.Errorf("check the config of %s plugin %s: %w", fam.Name, spec.Name, err)
	}
	defer inst.stop(false, h.timing.stopTimeout)
	if err := inst.setUp(ctx, p, spec, false); err != nil {
		if _, ok := err.(*ConfigError); ok {
			return err
		}
		return fmt.Errorf("check the config of %s plugin %s (%s): %w", fam.Name, spec.Name, path, err)
	}
	return nil
}
