package local_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/fedlet/fedlet/plugins/sdk/testenv"
)

// driverBinary is cmd/fedlet-csi-local, built once by TestMain: the tests
// run the driver as a kubelet would, standalone on its unix socket.
var driverBinary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "csi-local-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, "temp dir:", err)
		os.Exit(1)
	}
	driverBinary = filepath.Join(dir, "fedlet-csi-local")
	if out, err := exec.Command("go", "build", "-o", driverBinary, "github.com/fedlet/fedlet/cmd/fedlet-csi-local").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build fedlet-csi-local: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// needNode ends the test unless the machine can make volumes: root for
// loop devices and mounts, and e2fsprogs' tools.
func needNode(t *testing.T) {
	t.Helper()
	testenv.Need(t, "root, for loop devices and mounts", os.Geteuid() == 0)
	for _, tool := range []string{"losetup", "mkfs.ext4", "resize2fs", "e2fsck", "dumpe2fs", "blkid", "blockdev"} {
		_, err := exec.LookPath(tool)
		testenv.Need(t, tool+" (Debian packages mount, e2fsprogs, util-linux)", err == nil)
	}
}

// nodeDir returns a directory for a test's sockets, state, staging and
// target paths. When the test ends, whatever is still mounted under it
// is unmounted and the loop devices of its volumes are detached (after a
// failure; checkNothingLeft says whether the driver did it itself), so
// that no test leaves the node dirty.
func nodeDir(t *testing.T) (dir, stateDir string) {
	t.Helper()
	dir = t.TempDir()
	stateDir = filepath.Join(dir, "state")
	t.Cleanup(func() {
		mounts, _ := os.ReadFile("/proc/self/mountinfo")
		var under []string
		for _, line := range strings.Split(string(mounts), "\n") {
			if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
				under = append(under, f[4])
			}
		}
		for i := len(under) - 1; i >= 0; i-- { // the last mounted first
			_ = syscall.Unmount(under[i], syscall.MNT_DETACH)
		}
		out, _ := exec.Command("losetup", "--list", "--noheadings", "--output", "NAME,BACK-FILE").Output()
		for _, line := range strings.Split(string(out), "\n") {
			if f := strings.Fields(line); len(f) > 1 && strings.HasPrefix(f[1], stateDir+"/") {
				_ = exec.Command("losetup", "--detach", f[0]).Run()
			}
		}
	})
	return dir, stateDir
}

// driver is a standalone fedlet-csi-local process.
type driver struct {
	cmd      *exec.Cmd
	endpoint string
	exited   chan struct{}
}

// startDriver runs the driver on a socket in dir with its state in
// stateDir, and waits until it answers Probe. The test's end stops it.
func startDriver(t *testing.T, dir, stateDir string) *driver {
	t.Helper()
	socket := filepath.Join(dir, "csi.sock")
	d := &driver{endpoint: "unix://" + socket, exited: make(chan struct{})}
	d.cmd = exec.Command(driverBinary, "--endpoint", d.endpoint, "--node-id", "node-under-test", "--state-dir", stateDir, "--max-volumes", "5",
		"--registration-dir", filepath.Join(dir, "plugins_registry"))
	d.cmd.Stdout, d.cmd.Stderr = os.Stderr, os.Stderr
	// A test process that exits without its cleanups (Ginkgo refuses
	// -count=2 with os.Exit) takes the driver with it.
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("start the driver: %v", err)
	}
	go func() { d.cmd.Wait(); close(d.exited) }()
	t.Cleanup(func() { d.stop(t, syscall.SIGTERM) })

	conn := dial(t, d.endpoint)
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		resp, err := csi.NewIdentityClient(conn).Probe(ctx, &csi.ProbeRequest{})
		cancel()
		if err == nil && resp.GetReady().GetValue() {
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("the driver on %s is not ready after 30s: %v %v", d.endpoint, resp, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop ends the driver with sig and waits for it.
func (d *driver) stop(t *testing.T, sig syscall.Signal) {
	t.Helper()
	select {
	case <-d.exited:
		return
	default:
	}
	_ = d.cmd.Process.Signal(sig)
	select {
	case <-d.exited:
	case <-time.After(30 * time.Second):
		t.Errorf("the driver did not exit within 30s of %v", sig)
		_ = d.cmd.Process.Kill()
	}
}

// dial connects to a CSI endpoint; the test's end closes the connection.
func dial(t *testing.T, endpoint string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("dial %s: %v", endpoint, err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// checkNothingLeft fails t if a loop device is still attached to a file
// under stateDir, or anything is still mounted under dir.
func checkNothingLeft(t *testing.T, dir, stateDir string) {
	t.Helper()
	out, err := exec.Command("losetup", "--list", "--noheadings", "--output", "NAME,BACK-FILE").Output()
	if err != nil {
		t.Fatalf("losetup: %v", err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, stateDir) {
			t.Errorf("loop device left attached: %s", line)
		}
	}
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(mounts), "\n") {
		if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], dir) {
			t.Errorf("mount left: %s", line)
		}
	}
}
