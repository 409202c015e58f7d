package containerd

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/client"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
	"github.com/fedlet/fedlet/plugins/runtime/containerd/containerdtest"
	"github.com/fedlet/fedlet/plugins/sdk"
)

// The tests run the backend against a real containerd with runc. The test
// binary is the backend's executable, so it also serves as the log driver.
func TestMain(m *testing.M) {
	if IsLogDriver(os.Args) {
		RunLogDriver(os.Args)
	}
	code := m.Run()
	if shared.d != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		if err := shared.d.Stop(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "stop containerd:", err)
		}
		cancel()
	}
	os.Exit(code)
}

const (
	testImage = "docker.io/fedlet/busybox:test"
	testNode  = "node-a"
)

// One daemon serves every test of the package; each test has a containerd
// namespace of its own.
var shared struct {
	once sync.Once
	d    *containerdtest.Daemon
	err  error
}

func sharedDaemon(t *testing.T) *containerdtest.Daemon {
	t.Helper()
	containerdtest.Require(t)
	shared.once.Do(func() {
		dir, err := os.MkdirTemp("", "ctrd-")
		if err != nil {
			shared.err = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		shared.d, shared.err = containerdtest.Start(ctx, containerdtest.Options{Dir: dir})
	})
	if shared.err != nil {
		t.Fatalf("start containerd: %v", shared.err)
	}
	return shared.d
}

var nsCounter atomic.Int32

// harness is one backend served over a real gRPC socket, as the agent sees
// it, plus a containerd client to check what the backend did.
type harness struct {
	t        *testing.T
	d        *containerdtest.Daemon
	ns       string
	stateDir string
	ctr      *client.Client
	rt       runtimev1.RuntimeClient

	backend *Backend
	server  *grpc.Server
	conn    *grpc.ClientConn
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	d := sharedDaemon(t)
	h := &harness{
		t:        t,
		d:        d,
		ns:       fmt.Sprintf("fedlet-test-%d", nsCounter.Add(1)),
		stateDir: t.TempDir(),
	}
	ctx := h.ctx()
	if err := d.ImportBusybox(ctx, h.ns, DefaultSnapshotter, testImage); err != nil {
		t.Fatalf("import busybox: %v", err)
	}
	var err error
	if h.ctr, err = d.Client(h.ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.ctr.Close() })
	h.startPlugin()
	t.Cleanup(h.stopPlugin)
	return h
}

func (h *harness) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	h.t.Cleanup(cancel)
	return ctx
}

func (h *harness) config() []byte {
	cfg, _ := json.Marshal(map[string]any{
		"address":     h.d.Address,
		"namespace":   h.ns,
		"stateDir":    h.stateDir,
		"nodeAddress": "127.0.0.1",
	})
	return cfg
}

// startPlugin starts a fresh backend, as a restarted plugin process would
// be, and configures it.
func (h *harness) startPlugin() {
	h.t.Helper()
	h.backend = New(Options{})
	sock := filepath.Join(h.t.TempDir(), "rt.sock")
	lis, err := net.Listen("unix", sock)
	if err != nil {
		h.t.Fatal(err)
	}
	// Behind the SDK's request rules, as sdk.ServeRuntime serves it.
	h.server = grpc.NewServer(sdk.NewRequestRules().ServerOptions()...)
	runtimev1.RegisterRuntimeServer(h.server, h.backend)
	go h.server.Serve(lis)
	h.conn, err = grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		h.t.Fatal(err)
	}
	h.rt = runtimev1.NewRuntimeClient(h.conn)
	if _, err := h.rt.Configure(h.ctx(), &runtimev1.ConfigureRequest{Config: h.config(), Nodes: []string{testNode}}); err != nil {
		h.t.Fatalf("configure: %v", err)
	}
}

func (h *harness) stopPlugin() {
	h.conn.Close()
	h.server.Stop()
	h.backend.Close()
}

// restartPlugin simulates a plugin crash and restart: nothing of the old
// backend survives but what containerd holds.
func (h *harness) restartPlugin() {
	h.stopPlugin()
	h.startPlugin()
}

func newPod(name string) *runtimev1.PodRef {
	b := make([]byte, 16)
	rand.Read(b)
	u := hex.EncodeToString(b)
	return &runtimev1.PodRef{Uid: u[:8] + "-" + u[8:12] + "-" + u[12:16] + "-" + u[16:20] + "-" + u[20:], Namespace: "default", Name: name}
}

func (h *harness) runSandbox(pod *runtimev1.PodRef, hostNetwork bool) *runtimev1.Sandbox {
	h.t.Helper()
	sb, err := h.rt.RunSandbox(h.ctx(), &runtimev1.RunSandboxRequest{Node: testNode, Pod: pod, HostNetwork: hostNetwork})
	if err != nil {
		h.t.Fatalf("run sandbox: %v", err)
	}
	h.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		// The current backend, whichever it is by then.
		if _, err := h.rt.RemoveSandbox(ctx, &runtimev1.RemoveSandboxRequest{Node: testNode, PodUid: pod.GetUid()}); err != nil {
			h.t.Errorf("remove sandbox: %v", err)
		}
	})
	return sb
}

func (h *harness) startContainer(pod *runtimev1.PodRef, name string, attempt uint32, command ...string) *runtimev1.ContainerStatus {
	h.t.Helper()
	st, err := h.rt.StartContainer(h.ctx(), &runtimev1.StartContainerRequest{
		Node: testNode, Pod: pod, Attempt: attempt,
		Container: &runtimev1.ContainerSpec{Name: name, Image: testImage, Command: command},
	})
	if err != nil {
		h.t.Fatalf("start container %s: %v", name, err)
	}
	return st
}

// status finds an attempt in ListSandboxes.
func (h *harness) status(pod *runtimev1.PodRef, name string, attempt uint32) *runtimev1.ContainerStatus {
	h.t.Helper()
	resp, err := h.rt.ListSandboxes(h.ctx(), &runtimev1.ListSandboxesRequest{Node: testNode})
	if err != nil {
		h.t.Fatalf("list sandboxes: %v", err)
	}
	for _, sb := range resp.GetSandboxes() {
		if sb.GetSandbox().GetPod().GetUid() != pod.GetUid() {
			continue
		}
		for _, c := range sb.GetContainers() {
			if c.GetName() == name && c.GetAttempt() == attempt {
				return c
			}
		}
	}
	return nil
}

// waitExited polls ListSandboxes until the attempt has exited.
func (h *harness) waitExited(pod *runtimev1.PodRef, name string, attempt uint32) *runtimev1.ContainerStatus {
	h.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		st := h.status(pod, name, attempt)
		if st.GetState() == runtimev1.ContainerState_CONTAINER_STATE_EXITED {
			return st
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("container %s did not exit; last status %v", name, st)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (h *harness) logs(req *runtimev1.ContainerLogsRequest) (string, error) {
	req.Node = testNode
	stream, err := h.rt.ContainerLogs(h.ctx(), req)
	if err != nil {
		return "", err
	}
	var sb strings.Builder
	for {
		chunk, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return sb.String(), nil
		}
		if err != nil {
			return sb.String(), err
		}
		sb.Write(chunk.GetData())
	}
}

// tasks counts the namespace's tasks, by container ID.
func (h *harness) tasks() map[string]bool {
	h.t.Helper()
	c, err := h.ctr.Containers(h.ctx())
	if err != nil {
		h.t.Fatal(err)
	}
	out := map[string]bool{}
	for _, ctr := range c {
		if _, err := ctr.Task(h.ctx(), nil); err == nil {
			out[ctr.ID()] = true
		}
	}
	return out
}
