package containerd

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/cri-client/pkg/logs"
)

func TestParseConfigDefaults(t *testing.T) {
	c, err := ParseConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Address != DefaultAddress || c.Namespace != DefaultNamespace || c.Snapshotter != DefaultSnapshotter || c.MaxPods != DefaultMaxPods || c.StateDir != DefaultStateDir {
		t.Errorf("defaults not applied: %+v", c)
	}
	if c.NodeAddress == "" {
		t.Error("no node address chosen")
	}
}

func TestParseConfigRejects(t *testing.T) {
	for _, tc := range []struct {
		json, mention string
	}{
		{`{"adress": "/x.sock"}`, `"adress"`},
		{`{"maxPods": "many"}`, "maxPods"},
		{`{"maxPods": -1}`, "maxPods"},
		{`{"nodeAddress": "not-an-ip"}`, "nodeAddress"},
		{`{"namespace": "bad/ns"}`, "namespace"},
		{`{"plainHTTPRegistries": ["http://x"]}`, "plainHTTPRegistries[0]"},
		{`{} {}`, "unexpected data"},
	} {
		_, err := ParseConfig([]byte(tc.json))
		if err == nil || !strings.Contains(err.Error(), tc.mention) {
			t.Errorf("ParseConfig(%s) = %v, want an error mentioning %s", tc.json, err, tc.mention)
		}
	}
}

func TestParseConfigValues(t *testing.T) {
	c, err := ParseConfig([]byte(`{"address":"/a.sock","namespace":"ns1","stateDir":"/s","snapshotter":"native","plainHTTPRegistries":["reg:5000"],"maxPods":7,"nodeAddress":"10.0.0.2"}`))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{Address: "/a.sock", Namespace: "ns1", StateDir: "/s", Snapshotter: "native", PlainHTTPRegistries: []string{"reg:5000"}, MaxPods: 7, NodeAddress: "10.0.0.2"}
	if c.Address != want.Address || c.Namespace != want.Namespace || c.StateDir != want.StateDir || c.Snapshotter != want.Snapshotter ||
		c.MaxPods != want.MaxPods || c.NodeAddress != want.NodeAddress || len(c.PlainHTTPRegistries) != 1 {
		t.Errorf("got %+v, want %+v", c, want)
	}
}

func TestContainerIDIsStableAndValid(t *testing.T) {
	a := containerID("uid-1", "app", 0)
	if a != containerID("uid-1", "app", 0) {
		t.Fatal("containerID is not a function of its inputs")
	}
	for _, other := range []string{containerID("uid-1", "app", 1), containerID("uid-1", "app2", 0), containerID("uid-2", "app", 0), sandboxID("uid-1")} {
		if other == a {
			t.Errorf("IDs collide: %s", a)
		}
	}
	if len(a) > 76 {
		t.Errorf("ID %s is longer than containerd allows", a)
	}
}

func writeLog(t *testing.T, lines ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "0.log")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// readLog reads a log file as ContainerLogs does, without following it.
func readLog(t *testing.T, path string, opts logs.LogOptions, tail int64) string {
	t.Helper()
	var out bytes.Buffer
	w := &chunkWriter{send: func(b []byte) error { out.Write(b); return nil }}
	if err := (criLog{path: path}).read(context.Background(), &opts, tail, w, w); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

func TestTailCountsWholeLines(t *testing.T) {
	path := writeLog(t,
		"2024-01-01T00:00:01Z stdout F one",
		"2024-01-01T00:00:02Z stdout P tw",
		"2024-01-01T00:00:03Z stdout F o",
		"2024-01-01T00:00:04Z stderr F three",
	)
	for _, tc := range []struct {
		n    int64
		want string
	}{{0, ""}, {1, "three\n"}, {2, "two\nthree\n"}, {3, "one\ntwo\nthree\n"}, {10, "one\ntwo\nthree\n"}, {-1, "one\ntwo\nthree\n"}} {
		if got := readLog(t, path, logs.LogOptions{}, tc.n); got != tc.want {
			t.Errorf("tail %d = %q, want %q", tc.n, got, tc.want)
		}
	}
}

func TestLogOptions(t *testing.T) {
	path := writeLog(t,
		"2024-01-01T00:00:01Z stdout F one",
		"2024-01-01T00:00:02.5Z stdout F two",
		"2024-01-01T00:00:03Z stderr F three",
	)
	// The kubelet's format: RFC 3339 with nanoseconds, fixed width.
	if got := readLog(t, path, logs.LogOptions{Timestamp: true}, -1); got != "2024-01-01T00:00:01.000000000Z one\n2024-01-01T00:00:02.500000000Z two\n2024-01-01T00:00:03.000000000Z three\n" {
		t.Errorf("timestamps: %q", got)
	}
	if got := readLog(t, path, logs.LogOptions{Since: time.Date(2024, 1, 1, 0, 0, 2, 0, time.UTC)}, -1); got != "two\nthree\n" {
		t.Errorf("since: %q", got)
	}
	limit := int64(6)
	if got := readLog(t, path, logs.LogOptions{LimitBytes: &limit}, -1); got != "one\ntw" {
		t.Errorf("limit: %q", got)
	}
	if got := readLog(t, filepath.Join(t.TempDir(), "missing.log"), logs.LogOptions{}, -1); got != "" {
		t.Errorf("a log not written yet: %q, want nothing", got)
	}
}

// Output goes out in chunks, at once when a chunk is full, soon after
// otherwise, and none after Close.
func TestChunkWriter(t *testing.T) {
	var mu sync.Mutex
	var sent [][]byte
	w := &chunkWriter{send: func(b []byte) error {
		mu.Lock()
		defer mu.Unlock()
		sent = append(sent, b)
		return nil
	}}
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(sent)
	}
	_, _ = w.Write(bytes.Repeat([]byte("x"), logChunkSize))
	if count() != 1 {
		t.Fatalf("a full chunk was not sent at once (%d sent)", count())
	}
	_, _ = w.Write([]byte("line\n"))
	deadline := time.Now().Add(5 * time.Second)
	for count() != 2 {
		if time.Now().After(deadline) {
			t.Fatal("a short chunk was never sent")
		}
		time.Sleep(time.Millisecond)
	}
	_, _ = w.Write([]byte("last\n"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * logFlushDelay)
	if count() != 3 || string(sent[2]) != "last\n" {
		t.Errorf("Close sent %d chunks, the last %q; want 3, \"last\\n\"", count(), sent[len(sent)-1])
	}
}

func TestFindLogDriver(t *testing.T) {
	dir := t.TempDir()
	self := filepath.Join(dir, "fedlet-runtime-containerd")
	if got := findLogDriver(self); got != self {
		t.Errorf("without %s: %q, want the plugin itself", LogDriverBinary, got)
	}
	driver := filepath.Join(dir, LogDriverBinary)
	if err := os.WriteFile(driver, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if got := findLogDriver(self); got != self {
		t.Errorf("with a %s that is not executable: %q, want the plugin itself", LogDriverBinary, got)
	}
	if err := os.Chmod(driver, 0o775); err != nil {
		t.Fatal(err)
	}
	if got := findLogDriver(self); got != self {
		t.Errorf("with a %s its group may replace: %q, want the plugin itself", LogDriverBinary, got)
	}
	if err := os.Chmod(driver, 0o755); err != nil {
		t.Fatal(err)
	}
	if got := findLogDriver(self); got != driver {
		t.Errorf("with %s beside it: %q", LogDriverBinary, got)
	}
}
