package pluginhost

import (
	"context"
	"fmt"
	"log/slog"
	"path"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	pluginv1 "github.com/fedlet/fedlet/plugins/proto/plugin/v1"
)

// process is a supervised plugin process of any family. Its process may be
// restarted any number of times; the connection from conn stays valid
// throughout. Plugin wraps it with its family's client.
type process struct {
	host *Host
	fam  *Family[any]
	spec PluginSpec
	log  *slog.Logger
	done chan struct{}
	// callTimeout bounds each unary call that has no deadline of its own.
	callTimeout time.Duration

	cur     atomic.Pointer[instance] // nil while no process is ready
	stopped atomic.Bool

	mu       sync.Mutex
	specGen  uint64 // counts the spec's changes (reconfigure)
	describe *pluginv1.DescribeResponse
	state    PluginEvent // the last event: Started while up, Down otherwise
	subs     map[int]chan PluginEvent
	nextSub  int
	closed   bool // no more events: subscribers' channels are closed
}

// startProcess launches the plugin process of spec, calls Describe and
// Configure, and returns once that first start succeeded; otherwise it
// returns why it failed, with the plugin's last stderr lines. From then on a
// goroutine owned by ctx supervises the process (supervise.go).
func startProcess(ctx context.Context, h *Host, f *Family[any], spec PluginSpec) (*process, error) {
	if spec.Name == "" || spec.Plugin == "" {
		return nil, fmt.Errorf("start %s plugin: name (%q) and plugin binary (%q) are both required", f.Name, spec.Name, spec.Plugin)
	}
	p := &process{
		host: h,
		fam:  f,
		spec: spec,
		log:  h.log.With("plugin", spec.Name),
		done: make(chan struct{}),
		subs: map[int]chan PluginEvent{},

		callTimeout: spec.CallTimeout,
	}
	if p.callTimeout <= 0 {
		p.callTimeout = DefaultCallTimeout
	}
	inst, err := p.launch(ctx)
	if err != nil {
		return nil, fmt.Errorf("start %s plugin %s: %w", f.Name, spec.Name, err)
	}
	p.setUp(inst)
	go p.supervise(ctx, inst)
	return p, nil
}

// currentSpec is the spec the next start configures the process with, and
// its generation.
func (p *process) currentSpec() (PluginSpec, uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.spec, p.specGen
}

// reconfigure changes the nodes of the spec and configures the process
// that is up with them. One that is not up gets them at its start.
func (p *process) reconfigure(ctx context.Context, nodes []string, settings map[string]map[string][]byte) error {
	p.mu.Lock()
	p.spec.Nodes, p.spec.NodeSettings = nodes, settings
	p.specGen++
	spec := p.spec
	p.mu.Unlock()
	inst := p.cur.Load()
	if inst == nil {
		return nil // configured at its start (or caught up, see catchUp)
	}
	callCtx, cancel := context.WithTimeout(ctx, p.host.timing.setupTimeout)
	defer cancel()
	if err := inst.configure(callCtx, p.fam, spec); err != nil {
		return fmt.Errorf("configure plugin %s with nodes %v: %w", spec.Name, nodes, err)
	}
	return nil
}

// catchUp configures a process that was launched with an older spec than
// the current one: reconfigure ran while it was starting.
func (p *process) catchUp(ctx context.Context, inst *instance) {
	spec, gen := p.currentSpec()
	if gen == inst.specGen {
		return
	}
	callCtx, cancel := context.WithTimeout(ctx, p.host.timing.setupTimeout)
	defer cancel()
	if err := inst.configure(callCtx, p.fam, spec); err != nil {
		p.log.Error("configure the restarted plugin with its current nodes", "nodes", spec.Nodes, "err", err)
	}
}

// Describe returns what the plugin said of itself at its last start.
func (p *process) Describe() *pluginv1.DescribeResponse {
	p.mu.Lock()
	defer p.mu.Unlock()
	return proto.CloneOf(p.describe)
}

// State says whether the process is up, with a reason (one of the Reason
// constants) and a message for humans.
func (p *process) State() (up bool, reason, message string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.state.Kind == Started, p.state.Reason, p.state.Message
}

// Done is closed once the plugin has stopped for good: its context ended,
// its process is gone and its supervisor has returned.
func (p *process) Done() <-chan struct{} { return p.done }

// conn returns the connection every client of the plugin is built on.
func (p *process) conn() grpc.ClientConnInterface { return forwardConn{p} }

// forwardConn sends each call to the process that is up at that moment, so
// that callers never hold a connection to a dead process.
type forwardConn struct{ p *process }

func (f forwardConn) Invoke(ctx context.Context, method string, args, reply any, opts ...grpc.CallOption) error {
	inst, err := f.p.current()
	if err != nil {
		return err
	}
	callCtx, timeout := ctx, time.Duration(0)
	if _, ok := ctx.Deadline(); !ok {
		timeout = f.p.callTimeout
		var cancel context.CancelFunc
		callCtx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	err = inst.conn.Invoke(callCtx, method, args, reply, opts...)
	c := status.Code(err)
	if (c == codes.Canceled || c == codes.Unavailable) && ctx.Err() == nil && f.p.cur.Load() != inst {
		// The process went away during the call: say so in the code callers
		// retry on, rather than the Canceled of a closed connection.
		return status.Errorf(codes.Unavailable, "plugin %s went down during the call: %v", f.p.spec.Name, err)
	}
	if c == codes.DeadlineExceeded && timeout > 0 && ctx.Err() == nil {
		// Name who did not answer: this message becomes a pod's status.
		return status.Errorf(codes.DeadlineExceeded, "plugin %s did not answer %s within %s", f.p.spec.Name, path.Base(method), timeout)
	}
	return err
}

func (f forwardConn) NewStream(ctx context.Context, desc *grpc.StreamDesc, method string, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	inst, err := f.p.current()
	if err != nil {
		return nil, err
	}
	return inst.conn.NewStream(ctx, desc, method, opts...)
}

func (p *process) current() (*instance, error) {
	if inst := p.cur.Load(); inst != nil {
		return inst, nil
	}
	if p.stopped.Load() {
		return nil, status.Errorf(codes.Unavailable, "plugin %s is stopped", p.spec.Name)
	}
	return nil, status.Errorf(codes.Unavailable, "plugin %s is restarting", p.spec.Name)
}

// setUp publishes a started and configured process.
func (p *process) setUp(inst *instance) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.describe = inst.describe
	p.cur.Store(inst)
	name, version := inst.describe.GetName(), inst.describe.GetVersion()
	p.log.Info("plugin started", "pid", inst.pid, "protocol", inst.version, "name", name, "version", version)
	p.broadcast(PluginEvent{
		Kind:     Started,
		Reason:   ReasonRunning,
		Message:  fmt.Sprintf("plugin %s %s is running as pid %d", name, version, inst.pid),
		Describe: inst.describe,
	})
}

// setDown withdraws the process from callers and tells subscribers why.
func (p *process) setDown(reason string, err error) {
	if reason == ReasonStopped {
		p.stopped.Store(true)
	}
	p.cur.Store(nil)
	p.mu.Lock()
	defer p.mu.Unlock()
	msg := "plugin is stopped"
	if err != nil {
		msg = err.Error()
	}
	if reason == ReasonStopped {
		p.log.Info("plugin stopping")
	} else {
		p.log.Warn("plugin down", "reason", reason, "error", msg)
	}
	p.broadcast(PluginEvent{Kind: Down, Reason: reason, Message: msg, Err: err})
}
