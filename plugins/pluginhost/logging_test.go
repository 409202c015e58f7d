package pluginhost

import (
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestPluginLoggerReemitsThroughSlog(t *testing.T) {
	logs := &logBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	hl := newPluginLogger(log, "mem", nil).Named("fedlet-testplugin")

	// As go-plugin re-logs a record parsed from the plugin's stderr.
	hl.Warn("disk almost full", "node", "n1", "free", 3, "pod", map[string]any{"name": "p", "uid": "u"},
		"plugin", "/usr/lib/fedlet/x", "timestamp", "2025-01-02T03:04:05.678Z")
	hl.Trace("below the agent's level")

	recs := logs.records(t)
	if len(recs) != 1 {
		t.Fatalf("got %d records, want 1:\n%s", len(recs), logs)
	}
	rec := recs[0]
	want := map[string]any{
		"msg": "disk almost full", "level": "WARN", "plugin": "mem", "node": "n1", "free": float64(3),
		"plugin_plugin": "/usr/lib/fedlet/x", "time": "2025-01-02T03:04:05.678Z",
	}
	for k, v := range want {
		if rec[k] != v {
			t.Errorf("%s = %v, want %v (record %v)", k, rec[k], v, rec)
		}
	}
	if pod, _ := rec["pod"].(map[string]any); pod["uid"] != "u" {
		t.Errorf("pod group lost: %v", rec)
	}
	for _, k := range []string{"@module", "@message", "timestamp"} {
		if _, ok := rec[k]; ok {
			t.Errorf("hclog key %q leaked into the record: %v", k, rec)
		}
	}
}

func TestLowestLevel(t *testing.T) {
	log := slog.New(slog.NewJSONHandler(&logBuffer{}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if l := lowestLevel(log); l != slog.LevelWarn {
		t.Errorf("lowestLevel = %v, want WARN", l)
	}
}

func TestStderrTail(t *testing.T) {
	tail := newStderrTail()
	w := &lineWriter{fn: tail.add}
	rec := func(level, msg string) string {
		b, _ := json.Marshal(map[string]any{"@level": level, "@message": msg, "@timestamp": time.Now().Format(time.RFC3339), "k": "v"})
		return string(b) + "\n"
	}
	_, _ = w.Write([]byte(rec("debug", "noise") + rec("error", "bad thing")))
	_, _ = w.Write([]byte("panic: boom\n"))
	for i := range 20 {
		_, _ = w.Write([]byte("goroutine frame " + strings.Repeat("x", i) + "\n"))
	}
	_, _ = w.Write([]byte("partial"))

	s := tail.String()
	if strings.Contains(s, "noise") || strings.Contains(s, "partial") {
		t.Errorf("tail kept a debug record or an unfinished line: %q", s)
	}
	if !strings.HasPrefix(s, "panic: boom | …") {
		t.Errorf("tail lost the panic line: %q", s)
	}
	if n := strings.Count(s, "goroutine frame"); n != tailLines {
		t.Errorf("tail kept %d lines, want %d", n, tailLines)
	}

	tail = newStderrTail()
	tail.add(strings.TrimSpace(rec("error", "bad thing")))
	if got := tail.String(); got != "[error] bad thing k=v" {
		t.Errorf("record shown as %q", got)
	}
}
