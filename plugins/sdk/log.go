package sdk

import (
	"io"
	"log/slog"
	"strings"
)

// LogLevelEnv names the environment variable through which the host tells a
// plugin the lowest log level it will keep ("trace", "debug", "info", "warn"
// or "error"), so that the plugin does not format records the host drops.
const LogLevelEnv = "FEDLET_PLUGIN_LOG_LEVEL"

// LevelTrace is the level below slog.LevelDebug that go-plugin's host calls
// "trace".
const LevelTrace = slog.LevelDebug - 4

// timestampFormat is the only layout go-plugin's host accepts in "@timestamp";
// a record with any other layout is shown raw instead of parsed.
const timestampFormat = "2006-01-02T15:04:05.000000Z07:00"

// NewLogHandler returns a slog handler writing one JSON object per record in
// the form go-plugin's host parses from a plugin's stderr: "@level",
// "@message", "@timestamp", and the record's attributes as further keys.
// ServeRuntime installs one on stderr as slog's default; a plugin that builds
// its own loggers can use it too.
func NewLogHandler(w io.Writer, level slog.Leveler) slog.Handler {
	return slog.NewJSONHandler(w, &slog.HandlerOptions{
		Level: level,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) > 0 {
				return a
			}
			switch a.Key {
			case slog.TimeKey:
				return slog.String("@timestamp", a.Value.Time().Format(timestampFormat))
			case slog.LevelKey:
				if l, ok := a.Value.Any().(slog.Level); ok {
					return slog.String("@level", LevelName(l))
				}
				return slog.Attr{Key: "@level", Value: a.Value}
			case slog.MessageKey:
				return slog.Attr{Key: "@message", Value: a.Value}
			}
			return a
		},
	})
}

// LevelName returns the name go-plugin's host gives a slog level: "trace"
// below slog.LevelDebug, then "debug", "info", "warn" and "error" (for
// slog.LevelError and above).
func LevelName(l slog.Level) string {
	switch {
	case l < slog.LevelDebug:
		return "trace"
	case l < slog.LevelInfo:
		return "debug"
	case l < slog.LevelWarn:
		return "info"
	case l < slog.LevelError:
		return "warn"
	default:
		return "error"
	}
}

// ParseLevel reads a level name as LevelName writes it, in any case. It
// reports false for an unknown name.
func ParseLevel(name string) (slog.Level, bool) {
	switch strings.ToLower(strings.TrimSpace(name)) {
	case "trace":
		return LevelTrace, true
	case "debug":
		return slog.LevelDebug, true
	case "info":
		return slog.LevelInfo, true
	case "warn", "warning":
		return slog.LevelWarn, true
	case "error":
		return slog.LevelError, true
	}
	return 0, false
}
