package containerd

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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

func writeLog(t *testing.T, lines ...string) *os.File {
	t.Helper()
	path := filepath.Join(t.TempDir(), "0.log")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func TestTailOffsetCountsWholeLines(t *testing.T) {
	f := writeLog(t,
		"2024-01-01T00:00:01Z stdout F one",
		"2024-01-01T00:00:02Z stdout P tw",
		"2024-01-01T00:00:03Z stdout F o",
		"2024-01-01T00:00:04Z stderr F three",
	)
	for _, tc := range []struct {
		n    int64
		want string
	}{{0, ""}, {1, "three\n"}, {2, "two\nthree\n"}, {3, "one\ntwo\nthree\n"}, {10, "one\ntwo\nthree\n"}} {
		off, err := tailOffset(f, tc.n)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := os.ReadFile(f.Name())
		var out bytes.Buffer
		o := logOutput{send: func(b []byte) error { out.Write(b); return nil }}
		for _, l := range strings.SplitAfter(string(data[off:]), "\n") {
			if l != "" {
				o.entry([]byte(l), time.Time{})
			}
		}
		o.flush()
		if out.String() != tc.want {
			t.Errorf("tail %d = %q, want %q", tc.n, out.String(), tc.want)
		}
	}
}

func TestLogOutputOptions(t *testing.T) {
	lines := []string{
		"2024-01-01T00:00:01Z stdout F one\n",
		"2024-01-01T00:00:02.5Z stdout F two\n",
		"2024-01-01T00:00:03Z stderr F three\n",
	}
	run := func(o logOutput, since time.Time) string {
		var out bytes.Buffer
		o.send = func(b []byte) error { out.Write(b); return nil }
		for _, l := range lines {
			if done, _ := o.entry([]byte(l), since); done {
				break
			}
		}
		o.flush()
		return out.String()
	}
	if got := run(logOutput{timestamps: true}, time.Time{}); got != "2024-01-01T00:00:01Z one\n2024-01-01T00:00:02.5Z two\n2024-01-01T00:00:03Z three\n" {
		t.Errorf("timestamps: %q", got)
	}
	if got := run(logOutput{}, time.Date(2024, 1, 1, 0, 0, 2, 0, time.UTC)); got != "two\nthree\n" {
		t.Errorf("since: %q", got)
	}
	if got := run(logOutput{limit: 6}, time.Time{}); got != "one\ntw" {
		t.Errorf("limit: %q", got)
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
