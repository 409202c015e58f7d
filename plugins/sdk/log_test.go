package sdk

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

func TestLogHandlerWritesWhatGoPluginParses(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(NewLogHandler(&buf, LevelTrace))
	log.Log(t.Context(), LevelTrace, "tracing", "n", 1)
	log.Warn("careful", "node", "n1", slog.Group("pod", "name", "p"))

	lines := bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n"))
	if len(lines) != 2 {
		t.Fatalf("got %d lines, want 2:\n%s", len(lines), buf.String())
	}
	wantLevels := []string{"trace", "warn"}
	for i, line := range lines {
		var rec map[string]any
		if err := json.Unmarshal(line, &rec); err != nil {
			t.Fatalf("line %d is not JSON: %v: %s", i, err, line)
		}
		if got := rec["@level"]; got != wantLevels[i] {
			t.Errorf("line %d: @level = %v, want %q", i, got, wantLevels[i])
		}
		if hclog.LevelFromString(rec["@level"].(string)) == hclog.NoLevel {
			t.Errorf("line %d: hclog does not know level %v", i, rec["@level"])
		}
		ts, _ := rec["@timestamp"].(string)
		// The exact layout go-plugin's host parses "@timestamp" with.
		if _, err := time.Parse("2006-01-02T15:04:05.000000Z07:00", ts); err != nil {
			t.Errorf("line %d: @timestamp %q: %v", i, ts, err)
		}
		for _, k := range []string{"time", "level", "msg"} {
			if _, ok := rec[k]; ok {
				t.Errorf("line %d: slog's own key %q is still there: %s", i, k, line)
			}
		}
	}

	var warn map[string]any
	_ = json.Unmarshal(lines[1], &warn)
	if warn["@message"] != "careful" || warn["node"] != "n1" {
		t.Errorf("fields lost: %s", lines[1])
	}
	if pod, _ := warn["pod"].(map[string]any); pod["name"] != "p" {
		t.Errorf("group lost: %s", lines[1])
	}
}

func TestLevelNamesRoundTrip(t *testing.T) {
	for _, l := range []slog.Level{LevelTrace, slog.LevelDebug, slog.LevelInfo, slog.LevelWarn, slog.LevelError} {
		got, ok := ParseLevel(LevelName(l))
		if !ok || got != l {
			t.Errorf("ParseLevel(LevelName(%v)) = %v, %v", l, got, ok)
		}
	}
	if _, ok := ParseLevel("loud"); ok {
		t.Error("ParseLevel accepted an unknown name")
	}
}
