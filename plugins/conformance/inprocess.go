package conformance

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	pluginv1 "github.com/fedlet/fedlet/plugins/proto/plugin/v1"
	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
	"github.com/fedlet/fedlet/plugins/sdk"
)

// NewServer makes a fresh implementation of the runtime protocol, as a
// plugin's main does before it calls sdk.ServeRuntime. The in-process mode
// calls it for the first server and again for each restart: what a new
// implementation knows of running pods it must learn from the backend, as
// a restarted plugin process must.
type NewServer func() runtimev1.RuntimeServer

// RunServer is Run in in-process mode: it serves implementations made by
// newServer over gRPC inside this process, on a unix socket, through the
// SDK's go-plugin binding of the newest runtime protocol version (what
// sdk.ServeRuntime registers, so what the SDK enforces for a binary holds
// here too), then calls Describe and Configure as the plugin host does and
// runs the checks of the suite Describe selects. cfg.Plugin and
// cfg.Checksum are ignored.
//
// The restart check kills the server abruptly (grpc.Server.Stop: every
// call in flight fails), calls Close on the implementation when it is an
// io.Closer (what a process's death releases), and serves a fresh one from
// newServer. A panic in a handler counts as a crash, as it would kill a
// plugin process: the call fails with Unavailable and the server is
// restarted the same way, so the checks that want the plugin to survive
// bad input fail. (A panic in a goroutine of the implementation's own
// ends the test process, as it would end a plugin process.)
func RunServer(ctx context.Context, newServer NewServer, cfg Config, report Reporter) Result {
	cfg, err := cfg.inProcessDefaults(newServer)
	return run(ctx, cfg, err, startServer(newServer), report)
}

// TestServer is Test in in-process mode: it runs the checks against
// implementations made by newServer, served as RunServer serves them, one
// subtest per check. A plugin author's test needs no binary:
//
//	func TestConformance(t *testing.T) {
//		conformance.TestServer(t, func() runtimev1.RuntimeServer { return myruntime.New() }, cfg)
//	}
func TestServer(t *testing.T, newServer NewServer, cfg Config) Result {
	t.Helper()
	cfg, err := cfg.inProcessDefaults(newServer)
	if err != nil {
		t.Fatal(err)
	}
	return test(t, cfg, startServer(newServer))
}

func (c Config) inProcessDefaults(newServer NewServer) (Config, error) {
	c = c.common()
	if newServer == nil {
		return c, errors.New("conformance: no server constructor given")
	}
	return c, nil
}

// restartDelay is how long the in-process mode waits before it serves again
// after a start failed, as the plugin host backs off.
const restartDelay = 500 * time.Millisecond

// server is the plugin under test in in-process mode: one implementation at
// a time, served on a unix socket in a directory of its own.
type server struct {
	cfg       Config
	newServer NewServer
	dir       string
	socket    string
	stopping  context.Context
	stopAll   context.CancelFunc
	restarts  sync.WaitGroup
	// A connection to a socket nothing listens on: while no server serves,
	// calls fail with Unavailable, as the plugin host's client's do.
	down   *grpc.ClientConn
	downRT runtimev1.RuntimeClient

	mu      sync.Mutex
	count   int       // servers started so far: the number of the newest
	inst    *instance // nil while none serves
	desc    *pluginv1.DescribeResponse
	last    lifeEvent
	subs    map[chan lifeEvent]struct{}
	conns   []*grpc.ClientConn // of every server started, closed when the kit stops
	stopped bool
}

// instance is one server, with the implementation it serves.
type instance struct {
	n      int
	impl   runtimev1.RuntimeServer
	srv    *grpc.Server
	served chan struct{} // closed once Serve has returned
	conn   *grpc.ClientConn
	rt     runtimev1.RuntimeClient
}

// startServer returns the starter of the in-process mode.
func startServer(newServer NewServer) starter {
	return func(ctx context.Context, cfg Config) (target, error) {
		dir, err := os.MkdirTemp("", "fedlet-conformance-")
		if err != nil {
			return nil, &startError{stageHandshake, fmt.Errorf("make the server's socket directory: %w", err)}
		}
		s := &server{cfg: cfg, newServer: newServer, dir: dir, socket: filepath.Join(dir, "plugin.sock"), subs: map[chan lifeEvent]struct{}{}}
		s.stopping, s.stopAll = context.WithCancel(context.WithoutCancel(ctx))
		s.down, err = dial(filepath.Join(dir, "down.sock"))
		if err != nil {
			_ = os.RemoveAll(dir)
			return nil, &startError{stageHandshake, err}
		}
		s.downRT = runtimev1.NewRuntimeClient(s.down)
		inst, err := s.launch(ctx)
		if err != nil {
			_ = s.down.Close()
			_ = os.RemoveAll(dir)
			return nil, err
		}
		s.up(inst)
		return s, nil
	}
}

// launch makes an implementation, serves it, and calls Describe then
// Configure, as the plugin host does after every start of a process.
func (s *server) launch(ctx context.Context) (*instance, error) {
	s.mu.Lock()
	s.count++
	n := s.count
	s.mu.Unlock()

	impl := s.newServer()
	if impl == nil {
		return nil, &startError{stageHandshake, fmt.Errorf("server %d: the constructor made no implementation", n)}
	}
	inst := &instance{n: n, impl: impl, served: make(chan struct{})}
	var err error
	inst.srv, err = sdk.NewRuntimeServer(impl, append(slices.Clone(s.cfg.ServeOptions), sdk.WithServerOptions(
		grpc.ChainUnaryInterceptor(s.crashOnPanicUnary(n)),
		grpc.ChainStreamInterceptor(s.crashOnPanicStream(n))))...)
	if err != nil {
		return nil, &startError{stageHandshake, fmt.Errorf("server %d: %w", n, err)}
	}
	lis, err := net.Listen("unix", s.socket)
	if err != nil {
		return nil, &startError{stageHandshake, fmt.Errorf("server %d: listen on %s: %w", n, s.socket, err)}
	}
	go func() {
		defer close(inst.served)
		_ = inst.srv.Serve(lis)
	}()
	if inst.conn, err = dial(s.socket); err != nil {
		inst.shutdown()
		return nil, &startError{stageHandshake, fmt.Errorf("server %d: %w", n, err)}
	}
	inst.rt = runtimev1.NewRuntimeClient(inst.conn)
	cctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	base := pluginv1.NewPluginClient(inst.conn)
	desc, err := base.Describe(cctx, &pluginv1.DescribeRequest{}, grpc.WaitForReady(true))
	if err != nil {
		_ = inst.conn.Close()
		inst.shutdown()
		return nil, &startError{stageDescribe, fmt.Errorf("server %d: describe: %w", n, err)}
	}
	if _, err := base.Configure(cctx, &pluginv1.ConfigureRequest{Config: s.cfg.PluginConfig, Nodes: []string{s.cfg.Node}}, grpc.WaitForReady(true)); err != nil {
		inst.shutdown()
		_ = inst.conn.Close()
		return nil, &startError{stageConfigure, fmt.Errorf("server %d: configure: %w", n, err)}
	}
	s.mu.Lock()
	s.desc = desc
	s.conns = append(s.conns, inst.conn)
	s.mu.Unlock()
	s.cfg.Log.Info("in-process plugin server started", "plugin", desc.GetName(), "server", n, "socket", s.socket)
	return inst, nil
}

// dial connects to a unix socket: one connection per server, as the plugin
// host has one per process.
func dial(socket string) (*grpc.ClientConn, error) {
	conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", socket, err)
	}
	return conn, nil
}

// shutdown ends the server at once, as the death of a process would: calls
// in flight fail, and the implementation releases what it holds. The
// connection stays open until the kit stops, so that calls in flight fail
// with Unavailable, as calls to a dead process do, not with Canceled.
func (inst *instance) shutdown() {
	inst.srv.Stop()
	<-inst.served
	if c, ok := inst.impl.(io.Closer); ok {
		_ = c.Close()
	}
}

func (s *server) up(inst *instance) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inst = inst
	s.broadcast(lifeEvent{up: true, reason: "PluginRunning", message: fmt.Sprintf("in-process server %d serves", inst.n)})
}

// crash ends server n, if it still serves, and serves a fresh
// implementation in its place.
func (s *server) crash(n int, reason, message string) error {
	s.mu.Lock()
	inst := s.inst
	if s.stopped || inst == nil || inst.n != n {
		s.mu.Unlock()
		return fmt.Errorf("in-process server %d does not serve (any more)", n)
	}
	s.inst = nil
	s.broadcast(lifeEvent{reason: reason, message: message})
	s.restarts.Add(1)
	s.mu.Unlock()

	s.cfg.Log.Warn("in-process plugin server killed", "server", n, "reason", reason, "message", message)
	go func() {
		defer s.restarts.Done()
		inst.shutdown()
		s.restart()
	}()
	return nil
}

// restart serves a fresh implementation, trying again after a pause while
// the start fails, until the kit stops.
func (s *server) restart() {
	for {
		inst, err := s.launch(s.stopping)
		if err == nil {
			s.mu.Lock()
			stopped := s.stopped
			s.mu.Unlock()
			if stopped {
				inst.shutdown()
				return
			}
			s.up(inst)
			return
		}
		s.cfg.Log.Warn("in-process plugin server did not start; trying again", "error", err, "after", restartDelay)
		s.mu.Lock()
		s.broadcast(lifeEvent{reason: "PluginStartFailed", message: err.Error()})
		s.mu.Unlock()
		select {
		case <-s.stopping.Done():
			return
		case <-time.After(restartDelay):
		}
	}
}

// crashOnPanicUnary and crashOnPanicStream turn a panic of a handler into
// the crash it would be in a plugin process.
func (s *server) crashOnPanicUnary(n int) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		defer s.recoverPanic(n, info.FullMethod, &err)
		return handler(ctx, req)
	}
}

func (s *server) crashOnPanicStream(n int) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
		defer s.recoverPanic(n, info.FullMethod, &err)
		return handler(srv, ss)
	}
}

func (s *server) recoverPanic(n int, method string, err *error) {
	r := recover()
	if r == nil {
		return
	}
	msg := fmt.Sprintf("server %d panicked in %s: %v", n, method, r)
	*err = status.Error(codes.Unavailable, "the plugin crashed: "+msg)
	_ = s.crash(n, "PluginExited", msg)
}

func (s *server) client() runtimev1.RuntimeClient {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inst == nil {
		return s.downRT
	}
	return s.inst.rt
}

func (s *server) describe() *pluginv1.DescribeResponse {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.desc
}

func (s *server) serving() (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inst == nil {
		return 0, fmt.Errorf("no in-process server serves: %s", s.last.message)
	}
	return s.inst.n, nil
}

func (s *server) live() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inst != nil
}

func (s *server) kill(n int) error {
	return s.crash(n, "PluginExited", fmt.Sprintf("in-process server %d was killed", n))
}

func (s *server) state() (bool, string, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inst != nil, s.last.reason, s.last.message
}

// subscriberBuffer is how many events a subscriber may fall behind before
// it loses the oldest.
const subscriberBuffer = 8

func (s *server) subscribe() (<-chan lifeEvent, func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := make(chan lifeEvent, subscriberBuffer)
	if s.stopped {
		close(ch)
		return ch, func() {}
	}
	ch <- s.last
	s.subs[ch] = struct{}{}
	return ch, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if _, ok := s.subs[ch]; ok {
			delete(s.subs, ch)
			close(ch)
		}
	}
}

// broadcast records ev as the state and offers it to every subscriber,
// dropping a slow one's oldest event rather than waiting. s.mu is held.
func (s *server) broadcast(ev lifeEvent) {
	s.last = ev
	for ch := range s.subs {
		for sent := false; !sent; {
			select {
			case ch <- ev:
				sent = true
			default:
				select {
				case <-ch:
				default:
				}
			}
		}
	}
}

func (s *server) stop() error {
	s.mu.Lock()
	s.stopped = true
	inst := s.inst
	s.inst = nil
	s.broadcast(lifeEvent{reason: "PluginStopped", message: "the kit stopped the in-process server"})
	for ch := range s.subs {
		close(ch)
	}
	s.subs = map[chan lifeEvent]struct{}{}
	s.mu.Unlock()

	s.stopAll()
	if inst != nil {
		inst.shutdown()
	}
	s.restarts.Wait()
	_ = s.down.Close()
	for _, c := range s.conns {
		_ = c.Close()
	}
	return os.RemoveAll(s.dir)
}
