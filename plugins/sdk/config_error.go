package sdk

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"

	pluginv1 "github.com/fedlet/fedlet/plugins/proto/plugin/v1"
)

// ConfigError is one thing wrong with a plugin's configuration, naming the
// field: what a plugin's config parser returns so that the agent can say
// which line of its config file to change, and how.
type ConfigError struct {
	// Field is the path into the plugin's JSON configuration:
	// "address", "members[0].kubeconfig", "systemReserved.cpu"; empty for
	// the configuration as a whole.
	Field string
	// Message says what is wrong.
	Message string
	// Fix says how to put it right; empty when Message says it already.
	Fix string
}

// Error reads "config field FIELD: MESSAGE", or "config: MESSAGE" without a
// field.
func (e *ConfigError) Error() string {
	if e.Field == "" {
		return "config: " + e.Message
	}
	return "config field " + e.Field + ": " + e.Message
}

// Violations turns a config parser's error into the base protocol's
// violations: one for each *ConfigError in err (alone, wrapped, or joined
// with errors.Join), one of the whole configuration for any other error;
// none for nil.
func Violations(err error) []*pluginv1.Violation {
	if err == nil {
		return nil
	}
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		var out []*pluginv1.Violation
		for _, e := range joined.Unwrap() {
			out = append(out, Violations(e)...)
		}
		return out
	}
	var ce *ConfigError
	if errors.As(err, &ce) {
		return []*pluginv1.Violation{{Field: ce.Field, Message: ce.Message, Fix: ce.Fix}}
	}
	return []*pluginv1.Violation{{Message: err.Error()}}
}

// checkFields checks raw against the listed fields: that it is a JSON
// object (or empty), that required fields are set, that set fields have
// their JSON type, and, when strict, that it sets no other field.
func checkFields(raw []byte, fields []ConfigField, strict bool) []*pluginv1.Violation {
	if len(fields) == 0 && !strict {
		return nil
	}
	obj := map[string]json.RawMessage{}
	if len(bytes.TrimSpace(raw)) > 0 {
		if err := json.Unmarshal(raw, &obj); err != nil {
			return []*pluginv1.Violation{{Message: "not a JSON object: " + err.Error(), Fix: "write the plugin's config as a mapping of its fields"}}
		}
	}
	var out []*pluginv1.Violation
	for _, f := range fields {
		v, set := obj[f.Name]
		if !set || bytes.Equal(bytes.TrimSpace(v), []byte("null")) {
			if f.Required {
				out = append(out, &pluginv1.Violation{Field: f.Name, Message: "must be set", Fix: fmt.Sprintf("set %s (%s): %s", f.Name, f.Type, f.Description)})
			}
			continue
		}
		if got := jsonType(v); !typeFits(got, f.Type) {
			out = append(out, &pluginv1.Violation{Field: f.Name, Message: fmt.Sprintf("expected %s, got JSON %s", f.Type, got), Fix: fmt.Sprintf("give %s a JSON %s", f.Name, f.Type)})
		}
	}
	if strict {
		var names []string
		for _, f := range fields {
			names = append(names, f.Name)
		}
		var unknown []string
		for name := range obj {
			if !slices.Contains(names, name) {
				unknown = append(unknown, name)
			}
		}
		slices.Sort(unknown)
		for _, name := range unknown {
			out = append(out, &pluginv1.Violation{Field: name, Message: "unknown field", Fix: fmt.Sprintf("remove it, or correct its spelling: the fields are %v", names)})
		}
	}
	return out
}

// jsonType is the JSON type of v: "string", "number", "boolean", "object",
// "array" or "null".
func jsonType(v json.RawMessage) string {
	switch b := bytes.TrimSpace(v); {
	case len(b) == 0:
		return "null"
	case b[0] == '"':
		return "string"
	case b[0] == '{':
		return "object"
	case b[0] == '[':
		return "array"
	case b[0] == 't' || b[0] == 'f':
		return "boolean"
	case b[0] == 'n':
		return "null"
	default:
		var f float64
		if json.Unmarshal(b, &f) == nil && f == math.Trunc(f) {
			return "integer"
		}
		return "number"
	}
}

func typeFits(got string, want FieldType) bool {
	switch want {
	case TypeNumber:
		return got == "number" || got == "integer"
	case "":
		return true
	}
	return got == string(want)
}
