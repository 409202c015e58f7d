package logdriver

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
	"time"
)

var criLine = regexp.MustCompile(`^(\S+) (stdout|stderr) (F|P) (.*)$`)

func TestCRILogWriter(t *testing.T) {
	var buf bytes.Buffer
	w := &criLogWriter{w: &buf}
	long := strings.Repeat("x", maxLogLine+10)
	w.copyStream("stdout", strings.NewReader("hello\n\nworld\n"+long+"\nlast"))
	w.copyStream("stderr", strings.NewReader("oops\n"))
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	var got []string
	for _, l := range lines {
		m := criLine.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("not a CRI line: %q", l)
		}
		if _, err := time.Parse(time.RFC3339Nano, m[1]); err != nil {
			t.Errorf("bad time in %q: %v", l, err)
		}
		text := m[4]
		if len(text) > 20 {
			text = text[:3] + "..."
		}
		got = append(got, m[2]+" "+m[3]+" "+text)
	}
	want := []string{"stdout F hello", "stdout F ", "stdout F world", "stdout P xxx...", "stdout F xxxxxxxxxx", "stdout P last", "stderr F oops"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}
