package pluginhost

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/fedlet/fedlet/plugins/sdk"
)

// instance is one plugin process, from launch to exit.
type instance[D describer] struct {
	client     *plugin.Client
	cmd        *exec.Cmd
	conn       *grpc.ClientConn
	exitedChan <-chan struct{}
	pid        int
	version    int // the negotiated protocol version
	describe   D
	stderr     *stderrTail
	startedAt  time.Time
	killing    atomic.Bool // the host is killing the process on purpose
	specGen    uint64      // the generation of the spec it was configured with
}

// go-plugin's messages about a process that ends; quiet when the host
// kills it on purpose.
const (
	msgNotGraceful = "plugin failed to exit gracefully"
	msgExited      = "plugin process exited"
)

// launch starts the plugin process of p's spec, negotiates the protocol,
// and calls Describe then Configure. It returns an instance that is ready for
// calls, or an error that says why not, with the plugin's last stderr lines.
func (p *process[D]) launch(ctx context.Context) (*instance[D], error) {
	h, log := p.host, p.log
	spec, gen := p.currentSpec()
	path, err := h.find(spec.Plugin)
	if err != nil {
		return nil, err
	}
	inst := &instance[D]{cmd: exec.Command(path), stderr: newStderrTail(), specGen: gen}
	inst.cmd.Env = append(inst.cmd.Env, sdk.LogLevelEnv+"="+sdk.LevelName(lowestLevel(log)))

	cfg := &plugin.ClientConfig{
		HandshakeConfig:  sdk.Handshake,
		VersionedPlugins: p.kind.versions,
		Cmd:              inst.cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		StartTimeout:     h.timing.startTimeout,
		Logger: newPluginLogger(h.log, spec.Name, func(msg string) bool {
			return (msg == msgNotGraceful || msg == msgExited) && inst.killing.Load()
		}),
		Stderr: &lineWriter{fn: inst.stderr.add},
		// What the plugin writes to os.Stdout and os.Stderr once it serves
		// arrives over go-plugin's stdio stream, not through the pipes above.
		SyncStdout: &lineWriter{fn: func(line string) { log.Info(line, "stream", "stdout") }},
		SyncStderr: &lineWriter{fn: func(line string) {
			inst.stderr.add(line)
			log.Info(line, "stream", "stderr")
		}},
	}
	want, pinned := h.checksums[spec.Plugin]
	if pinned {
		cfg.SecureConfig = &plugin.SecureConfig{Checksum: want, Hash: sha256.New()}
	}
	inst.client = plugin.NewClient(cfg)

	if err := inst.connect(&p.kind); err != nil {
		inst.stop(true, h.timing.stopTimeout)
		if errors.Is(err, plugin.ErrChecksumsDoNotMatch) {
			actual, sumErr := fileChecksum(path)
			if sumErr != nil {
				actual = "unknown (" + sumErr.Error() + ")"
			}
			return nil, &ChecksumError{Plugin: spec.Plugin, Path: path, Expected: formatChecksum(want), Actual: actual}
		}
		return nil, withStderr(fmt.Errorf("plugin %q (%s): %w", spec.Plugin, path, inst.startError(p.kind.family, err)), inst.stderr)
	}

	if err := inst.configure(ctx, &p.kind, spec, h.timing.setupTimeout); err != nil {
		inst.stop(true, h.timing.stopTimeout)
		return nil, withStderr(fmt.Errorf("plugin %q (%s) pid %d: %w", spec.Plugin, path, inst.pid, err), inst.stderr)
	}
	inst.startedAt = time.Now()
	return inst, nil
}

// connect starts the process and dispenses the client of the negotiated
// protocol version.
func (inst *instance[D]) connect(k *kind[D]) error {
	rpc, err := inst.client.Client()
	if err != nil {
		return err
	}
	if inst.cmd.Process != nil {
		inst.pid = inst.cmd.Process.Pid
	}
	inst.version = inst.client.NegotiatedVersion()
	if inst.version != k.driven {
		// go-plugin only negotiates versions we offer; this guards a version
		// added to the SDK's versioned plugins before the host learnt to drive it.
		return fmt.Errorf("%s protocol version %d negotiated, but this agent drives only version %d",
			k.family, inst.version, k.driven)
	}
	raw, err := rpc.Dispense(k.pluginName)
	if err != nil {
		return fmt.Errorf("dispense %q: %w", k.pluginName, err)
	}
	conn, exited, ok := k.bind(raw)
	if !ok {
		return fmt.Errorf("dispense %q: got %T, not a %s client", k.pluginName, raw, k.family)
	}
	inst.conn, inst.exitedChan = conn, exited
	return nil
}

// configure calls Describe then Configure, as every protocol requires after
// every start of the process.
func (inst *instance[D]) configure(ctx context.Context, k *kind[D], spec PluginSpec, timeout time.Duration) error {
	callCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	desc, err := k.describe(callCtx, inst.conn)
	if status.Code(err) == codes.Unimplemented {
		// go-plugin dispenses whatever the host asks for; a binary of
		// another kind only shows itself at the first call.
		return fmt.Errorf("describe: the plugin does not serve the %s protocol (is it a %s plugin?): %w", k.family, k.family, err)
	}
	if err != nil {
		return fmt.Errorf("describe: %w", err)
	}
	inst.describe = desc

	callCtx, cancel = context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := k.configure(callCtx, inst.conn, spec); err != nil {
		return fmt.Errorf("configure: %w", err)
	}
	return nil
}

// check asks go-plugin's health service of the process, as Client.Ping does,
// but bounded by a timeout: Ping would wait forever on a hung plugin.
func (inst *instance[D]) check(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	_, err := grpc_health_v1.NewHealthClient(inst.conn).Check(ctx,
		&grpc_health_v1.HealthCheckRequest{Service: plugin.GRPCServiceName})
	return err
}

// exited is closed once the process has exited.
func (inst *instance[D]) exited() <-chan struct{} { return inst.exitedChan }

// exitError says how the process ended. Call it once exited() is closed.
func (inst *instance[D]) exitError() error {
	err := fmt.Errorf("plugin process %d exited", inst.pid)
	if ps := inst.cmd.ProcessState; ps != nil {
		err = fmt.Errorf("plugin process %d exited: %s", inst.pid, ps)
	}
	return withStderr(err, inst.stderr)
}

// startError rewords go-plugin's start error: its first line only (the rest
// is generic advice), and how the process ended when it ended by itself. The
// plugin's stderr, added by the caller, usually says why.
func (inst *instance[D]) startError(family string, err error) error {
	msg, _, _ := strings.Cut(err.Error(), "\n")
	if strings.HasPrefix(msg, "incompatible API version") {
		msg = "negotiate the " + family + " protocol version: " + msg
	}
	ps := inst.cmd.ProcessState
	if ps == nil {
		return errors.New(msg)
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
		// Killed by go-plugin or by us on the failure itself: not news.
		return errors.New(msg)
	}
	if strings.TrimSpace(msg) == "Unrecognized remote plugin message:" || msg == "plugin exited before we could connect" {
		return fmt.Errorf("plugin exited before its handshake (%s)", ps)
	}
	return fmt.Errorf("%s (%s)", msg, ps)
}

// stop ends the process: gracefully through go-plugin (which asks the plugin
// to shut down, waits two seconds, then kills it), or at once with SIGKILL
// when force is set. A process that does not end in timeout is killed.
func (inst *instance[D]) stop(force bool, timeout time.Duration) {
	proc := inst.cmd.Process // set by client.Start, which ran on this goroutine's side
	inst.killing.Store(force)
	if force && proc != nil {
		_ = proc.Kill()
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		inst.client.Kill()
	}()
	select {
	case <-done:
	case <-time.After(timeout):
		// The shutdown call hangs on a plugin that stopped answering.
		if proc != nil {
			_ = proc.Kill()
		}
		<-done
	}
}
