package pluginhost

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// RuntimeSpec says which runtime plugin process to run.
type RuntimeSpec struct {
	// Name names the process in logs (plugin=<Name>) and errors.
	Name string
	// Plugin is the binary's file name, looked up in Config.Dirs.
	Plugin string
	// Config is the plugin's own configuration (JSON), given to Configure.
	Config []byte
	// Nodes are the nodes the process serves, given to Configure.
	Nodes []string
}

// Reasons of a Runtime's state, CamelCase as in Kubernetes conditions.
const (
	ReasonRunning     = "PluginRunning"     // up and configured
	ReasonExited      = "PluginExited"      // the process exited; being restarted
	ReasonUnhealthy   = "PluginUnhealthy"   // failed its health checks; killed and being restarted
	ReasonStartFailed = "PluginStartFailed" // a restart failed; retried with backoff
	ReasonStopped     = "PluginStopped"     // stopped for good because its context ended
)

// Runtime is a supervised runtime plugin process. Its process may be
// restarted any number of times; Client stays valid throughout.
type Runtime struct {
	host   *Host
	spec   RuntimeSpec
	log    *slog.Logger
	client runtimev1.RuntimeClient
	done   chan struct{}

	cur     atomic.Pointer[instance] // nil while no process is ready
	stopped atomic.Bool

	mu       sync.Mutex
	describe *runtimev1.DescribeResponse
	state    Event // the last event: Started while up, Down otherwise
	subs     map[int]chan Event
	nextSub  int
	closed   bool // no more events: subscribers' channels are closed
}

// StartRuntime launches the runtime plugin process of spec, calls Describe
// and Configure, and returns once that first start succeeded; otherwise it
// returns why it failed, with the plugin's last stderr lines.
//
// From then on a goroutine owned by ctx supervises the process: it restarts
// it with exponential backoff when it exits or fails its health checks,
// calls Describe and Configure again after each restart, and tells
// subscribers. When ctx ends the process is stopped; Done says when.
func (h *Host) StartRuntime(ctx context.Context, spec RuntimeSpec) (*Runtime, error) {
	if spec.Name == "" || spec.Plugin == "" {
		return nil, fmt.Errorf("start runtime plugin: name (%q) and plugin binary (%q) are both required", spec.Name, spec.Plugin)
	}
	r := &Runtime{
		host: h,
		spec: spec,
		log:  h.log.With("plugin", spec.Name),
		done: make(chan struct{}),
		subs: map[int]chan Event{},
	}
	r.client = runtimev1.NewRuntimeClient(forwardConn{r})

	inst, err := h.launch(ctx, spec, r.log)
	if err != nil {
		return nil, fmt.Errorf("start runtime plugin %s: %w", spec.Name, err)
	}
	r.setUp(inst)
	go r.supervise(ctx, inst)
	return r, nil
}

// Client returns the runtime client of the process. It is one client for
// the Runtime's whole life: each call goes to the process that is up at
// that moment, and fails with codes.Unavailable while none is.
func (r *Runtime) Client() runtimev1.RuntimeClient { return r.client }

// Describe returns what the plugin said of itself at its last start.
func (r *Runtime) Describe() *runtimev1.DescribeResponse {
	r.mu.Lock()
	defer r.mu.Unlock()
	return proto.CloneOf(r.describe)
}

// State says whether the process is up, with a reason (one of the Reason
// constants) and a message for humans.
func (r *Runtime) State() (up bool, reason, message string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.state.Kind == Started, r.state.Reason, r.state.Message
}

// Done is closed once the Runtime has stopped for good: its context ended,
// its process is gone and its supervisor has returned.
func (r *Runtime) Done() <-chan struct{} { return r.done }

// forwardConn sends each call to the process that is up at that moment, so
// that callers never hold a connection to a dead process.
type forwardConn struct{ r *Runtime }

var _ grpc.ClientConnInterface = forwardConn{}

func (f forwardConn) Invoke(ctx context.Context, method string, args, reply any, opts ...grpc.CallOption) error {
	inst, err := f.r.current()
	if err != nil {
		return err
	}
	err = inst.conn.Conn.Invoke(ctx, method, args, reply, opts...)
	if c := status.Code(err); (c == codes.Canceled || c == codes.Unavailable) && ctx.Err() == nil && f.r.cur.Load() != inst {
		// The process went away during the call: say so in the code callers
		// retry on, rather than the Canceled of a closed connection.
		return status.Errorf(codes.Unavailable, "plugin %s went down during the call: %v", f.r.spec.Name, err)
	}
	return err
}

func (f forwardConn) NewStream(ctx context.Context, desc *grpc.StreamDesc, method string, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	inst, err := f.r.current()
	if err != nil {
		return nil, err
	}
	return inst.conn.Conn.NewStream(ctx, desc, method, opts...)
}

func (r *Runtime) current() (*instance, error) {
	if inst := r.cur.Load(); inst != nil {
		return inst, nil
	}
	if r.stopped.Load() {
		return nil, status.Errorf(codes.Unavailable, "plugin %s is stopped", r.spec.Name)
	}
	return nil, status.Errorf(codes.Unavailable, "plugin %s is restarting", r.spec.Name)
}

// setUp publishes a started and configured process.
func (r *Runtime) setUp(inst *instance) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.describe = inst.describe
	r.cur.Store(inst)
	r.log.Info("plugin started", "pid", inst.pid, "protocol", inst.version,
		"name", inst.describe.GetName(), "version", inst.describe.GetVersion())
	r.broadcast(Event{
		Kind:     Started,
		Reason:   ReasonRunning,
		Message:  fmt.Sprintf("plugin %s %s is running as pid %d", inst.describe.GetName(), inst.describe.GetVersion(), inst.pid),
		Describe: inst.describe,
	})
}

// setDown withdraws the process from callers and tells subscribers why.
func (r *Runtime) setDown(reason string, err error) {
	if reason == ReasonStopped {
		r.stopped.Store(true)
	}
	r.cur.Store(nil)
	r.mu.Lock()
	defer r.mu.Unlock()
	msg := "plugin is stopped"
	if err != nil {
		msg = err.Error()
	}
	if reason == ReasonStopped {
		r.log.Info("plugin stopping")
	} else {
		r.log.Warn("plugin down", "reason", reason, "error", msg)
	}
	r.broadcast(Event{Kind: Down, Reason: reason, Message: msg, Err: err})
}
