package containerd

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"k8s.io/cri-client/pkg/logs"
)

// fakeDriver writes a CRI log as the log driver does, holding its lock
// while it runs.
type fakeDriver struct {
	f *os.File
}

func startFakeDriver(t *testing.T, path string) *fakeDriver {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return &fakeDriver{f: f}
}

func (d *fakeDriver) line(t *testing.T, text string) {
	t.Helper()
	ts := time.Now().UTC().Format(time.RFC3339Nano)
	if _, err := fmt.Fprintf(d.f, "%s stdout F %s\n", ts, text); err != nil {
		t.Error(err)
	}
}

// lockedBuffer is what a follower has sent so far.
type lockedBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (b *lockedBuffer) send(p []byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	return nil
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

// A follower sees output as it comes, and ends once the attempt has exited
// and its driver has written the last line: a line written after the exit
// is reported, while the driver still holds the file, is not lost.
func TestFollowEndsAfterTheDriversLastLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "0.log")
	var exited atomic.Bool
	asked := make(chan struct{}, 1) // the follower asked after the exit
	l := criLog{path: path, id: "c", running: func(context.Context) (bool, error) {
		if !exited.Load() {
			return true, nil
		}
		select {
		case asked <- struct{}{}:
		default:
		}
		return false, nil
	}}

	out := &lockedBuffer{}
	w := &chunkWriter{send: out.send}
	done := make(chan error, 1)
	go func() { // started before the driver creates the file: it waits for it
		done <- l.read(context.Background(), &logs.LogOptions{Follow: true}, -1, w, w)
	}()
	time.Sleep(2 * logPollInterval)
	d := startFakeDriver(t, path)
	d.line(t, "first")
	waitOutput(t, out, "first\n")

	// The attempt exits; a line wakes the follower, which then learns of
	// the exit while the driver has yet to write its last line.
	exited.Store(true)
	d.line(t, "second")
	select {
	case <-asked:
	case <-time.After(10 * time.Second):
		t.Fatal("the follower never asked whether the attempt runs")
	}
	time.Sleep(200 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("the follow ended (%v) while the driver still held the log", err)
	default:
	}
	d.line(t, "last")
	if err := d.f.Close(); err != nil { // releases the lock: the driver is done
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the follow did not end after the driver finished")
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != "first\nsecond\nlast\n" {
		t.Errorf("followed %q, want %q", got, "first\nsecond\nlast\n")
	}
}

// A follower whose caller goes away ends without an error.
func TestFollowEndsWithItsCaller(t *testing.T) {
	path := filepath.Join(t.TempDir(), "0.log")
	startFakeDriver(t, path).line(t, "hello")
	l := criLog{path: path, id: "c", running: func(context.Context) (bool, error) { return true, nil }}
	ctx, cancel := context.WithCancel(context.Background())
	out := &lockedBuffer{}
	w := &chunkWriter{send: out.send}
	done := make(chan error, 1)
	go func() { done <- l.read(ctx, &logs.LogOptions{Follow: true}, 0, w, w) }()
	time.Sleep(200 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("read = %v, want nil: the caller left", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the follow went on after its caller left")
	}
	_ = w.Close()
	if got := out.String(); got != "" {
		t.Errorf("tail 0 followed %q, want nothing written before", got)
	}
}

func waitOutput(t *testing.T, out *lockedBuffer, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for out.String() != want {
		if time.Now().After(deadline) {
			t.Fatalf("output %q, want %q", out.String(), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
