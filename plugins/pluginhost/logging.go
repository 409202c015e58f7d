package pluginhost

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/fedlet/fedlet/plugins/sdk"
)

// go-plugin logs through hclog: its own records, and every JSON record it
// parses from the plugin's stderr. newPluginLogger gives it an hclog logger
// that writes JSON to a slogWriter, which re-emits each record through the
// agent's slog logger with its level, time and fields, plus plugin=<name>.
//
// demote, when not nil, may lower a record to debug: go-plugin's complaints
// about a process the host is killing on purpose are not news.
func newPluginLogger(log *slog.Logger, name string, demote func(msg string) bool) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Output:     &slogWriter{handler: log.Handler(), plugin: name, demote: demote},
		JSONFormat: true,
		Level:      hclog.LevelFromString(sdk.LevelName(lowestLevel(log))),
	})
}

// lowestLevel is the lowest level log keeps; the plugin is told to log from
// there, so that neither side formats records that are dropped anyway.
func lowestLevel(log *slog.Logger) slog.Level {
	for _, l := range []slog.Level{sdk.LevelTrace, slog.LevelDebug, slog.LevelInfo, slog.LevelWarn} {
		if log.Enabled(context.Background(), l) {
			return l
		}
	}
	return slog.LevelError
}

// hclogTimeFormat is the layout of the "timestamp" field go-plugin adds to a
// record parsed from the plugin: the time the plugin logged it.
const hclogTimeFormat = "2006-01-02T15:04:05.000Z0700"

// slogWriter turns hclog's JSON lines into slog records.
type slogWriter struct {
	handler slog.Handler
	plugin  string
	demote  func(msg string) bool

	mu      sync.Mutex
	partial []byte
}

func (w *slogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		w.emit(w.partial[:i])
		w.partial = w.partial[i+1:]
	}
	if len(w.partial) == 0 {
		w.partial = nil // let a large line's buffer go
	}
	return len(p), nil
}

func (w *slogWriter) emit(line []byte) {
	ctx := context.Background()
	var fields map[string]any
	if err := json.Unmarshal(line, &fields); err != nil {
		// hclog only writes JSON; keep anything else rather than lose it.
		w.handle(ctx, slog.NewRecord(time.Now(), slog.LevelInfo, string(line), 0))
		return
	}
	level := slog.LevelInfo
	if s, ok := fields["@level"].(string); ok {
		if l, ok := sdk.ParseLevel(s); ok {
			level = l
		}
	}
	msg, _ := fields["@message"].(string)
	if w.demote != nil && level > slog.LevelDebug && w.demote(msg) {
		level = slog.LevelDebug
	}
	if !w.handler.Enabled(ctx, level) {
		return
	}
	t := time.Now()
	if ts, ok := fields["timestamp"].(string); ok {
		if pt, err := time.Parse(hclogTimeFormat, ts); err == nil {
			t = pt
			delete(fields, "timestamp")
		}
	}
	for _, k := range []string{"@level", "@message", "@timestamp", "@module", "@caller"} {
		delete(fields, k)
	}
	rec := slog.NewRecord(t, level, msg, 0)
	rec.AddAttrs(slog.String("plugin", w.plugin))
	for _, k := range sortedKeys(fields) {
		key := k
		if key == "plugin" {
			// go-plugin names the binary's path "plugin"; ours is the process name.
			key = "plugin_" + key
		}
		rec.AddAttrs(jsonAttr(key, fields[k]))
	}
	w.handle(ctx, rec)
}

func (w *slogWriter) handle(ctx context.Context, rec slog.Record) {
	if w.handler.Enabled(ctx, rec.Level) {
		_ = w.handler.Handle(ctx, rec)
	}
}

// jsonAttr turns a decoded JSON value into an attribute, objects into groups
// (a plugin's slog groups arrive as objects).
func jsonAttr(key string, v any) slog.Attr {
	m, ok := v.(map[string]any)
	if !ok {
		return slog.Any(key, v)
	}
	attrs := make([]any, 0, len(m))
	for _, k := range sortedKeys(m) {
		attrs = append(attrs, jsonAttr(k, m[k]))
	}
	return slog.Group(key, attrs...)
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// lineWriter calls fn with each complete line written to it.
type lineWriter struct {
	fn func(line string)

	mu      sync.Mutex
	partial []byte
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		w.fn(string(bytes.TrimRight(w.partial[:i], "\r")))
		w.partial = w.partial[i+1:]
	}
	if len(w.partial) == 0 {
		w.partial = nil
	}
	return len(p), nil
}

// stderrTail keeps the last lines a plugin wrote to stderr, to say why it
// failed to start or died: lines that are not log records (a panic, a
// message printed before serving), and log records of level warn and above,
// shown as "[level] message k=v".
type stderrTail struct {
	max int

	mu    sync.Mutex
	lines []string
	panic string // the first "panic:" line, which a stack trace pushes out
}

const (
	tailLines   = 10
	tailLineMax = 400
)

func newStderrTail() *stderrTail { return &stderrTail{max: tailLines} }

func (t *stderrTail) add(line string) {
	line = readableLogLine(line)
	if line == "" {
		return
	}
	if len(line) > tailLineMax {
		line = line[:tailLineMax] + "…"
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.panic == "" && (strings.HasPrefix(line, "panic: ") || strings.HasPrefix(line, "fatal error: ")) {
		t.panic = line
	}
	t.lines = append(t.lines, line)
	if len(t.lines) > t.max {
		t.lines = t.lines[len(t.lines)-t.max:]
	}
}

// String returns the kept lines joined by " | ", or "" when there are none.
func (t *stderrTail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	lines := t.lines
	if t.panic != "" && !slices.Contains(lines, t.panic) {
		lines = append([]string{t.panic, "…"}, lines...)
	}
	return strings.Join(lines, " | ")
}

func readableLogLine(line string) string {
	line = strings.TrimSpace(line)
	if !strings.HasPrefix(line, "{") {
		return line
	}
	var fields map[string]any
	if json.Unmarshal([]byte(line), &fields) != nil {
		return line
	}
	level, _ := fields["@level"].(string)
	msg, ok := fields["@message"].(string)
	if !ok {
		return line
	}
	if l, ok := sdk.ParseLevel(level); ok && l < slog.LevelWarn {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "[%s] %s", level, msg)
	for _, k := range sortedKeys(fields) {
		if !strings.HasPrefix(k, "@") {
			fmt.Fprintf(&b, " %s=%v", k, fields[k])
		}
	}
	return b.String()
}

// withStderr appends what the plugin last wrote to stderr to err.
func withStderr(err error, tail *stderrTail) error {
	if s := tail.String(); s != "" {
		return fmt.Errorf("%w; plugin stderr: %s", err, s)
	}
	return err
}
