package crilog_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fedlet/fedlet/plugins/sdk/crilog"
)

// Example writes a container's output and reads it back as `kubectl logs
// --tail 2` would.
func Example() {
	dir, _ := os.MkdirTemp("", "crilog-")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "0.log")
	log, _ := crilog.Create(path)
	fmt.Fprint(log.Stdout(), "one\ntwo\n")
	fmt.Fprint(log.Stdout(), "three\n")
	fmt.Fprint(log.Stderr(), "oops\n")
	_ = log.Close()

	_ = crilog.Read(context.Background(), path, crilog.Options{TailLines: 2}, nil, os.Stdout, os.Stdout)
	// Output:
	// three
	// oops
}

// TestEntries: complete lines become F entries, the rest of a write a P
// entry the next one continues, each stamped and tagged with its stream.
func TestEntries(t *testing.T) {
	path := filepath.Join(t.TempDir(), "0.log")
	log, err := crilog.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(log.Stdout(), "a\nb")
	fmt.Fprint(log.Stderr(), "c\n")
	if err := log.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		ts, rest, _ := strings.Cut(line, " ")
		if _, err := time.Parse(time.RFC3339Nano, ts); err != nil {
			t.Errorf("entry %q: time: %v", line, err)
		}
		got = append(got, rest)
	}
	want := []string{"stdout F a", "stdout P b", "stderr F c"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("entries %q, want %q", got, want)
	}
}

// TestFollowEndsWhenStopped: a follower gets what is written after it
// started, and ends once running says the container stopped.
func TestFollowEndsWhenStopped(t *testing.T) {
	path := filepath.Join(t.TempDir(), "0.log")
	log, err := crilog.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	fmt.Fprint(log.Stdout(), "before\n")
	var stopped atomicBool
	done := make(chan error, 1)
	var out lockedBuilder
	go func() {
		done <- crilog.Read(t.Context(), path, crilog.Options{Follow: true, TailLines: -1}, func() bool { return !stopped.get() }, &out, &out)
	}()
	time.Sleep(100 * time.Millisecond)
	fmt.Fprint(log.Stdout(), "after\n")
	stopped.set()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the follow did not end once the container stopped")
	}
	if got := out.String(); got != "before\nafter\n" {
		t.Errorf("followed %q, want %q", got, "before\nafter\n")
	}
}
