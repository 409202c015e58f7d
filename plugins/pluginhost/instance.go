package pluginhost

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	pluginv1 "github.com/fedlet/fedlet/plugins/proto/plugin/v1"
	"github.com/fedlet/fedlet/plugins/sdk"
)

// instance is one plugin process, from launch to exit.
type instance struct {
	client     *plugin.Client
	cmd        *exec.Cmd
	conn       *grpc.ClientConn
	exitedChan <-chan struct{}
	pid        int
	version    int  // the negotiated protocol version
	base       bool // the plugin serves the base protocol (pluginv1)
	describe   *pluginv1.DescribeResponse
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
// and describes, validates and configures it. It returns an instance that is
// ready for calls, or an error that says why not, with the plugin's last
// stderr lines.
func (p *process) launch(ctx context.Context) (*instance, error) {
	inst, path, spec, err := p.open()
	if err != nil {
		return nil, err
	}
	if err := inst.setUp(ctx, p, spec, true); err != nil {
		inst.stop(true, p.host.timing.stopTimeout)
		var ce *ConfigError
		if errors.As(err, &ce) {
			return nil, err // the plugin's own words; its stderr adds nothing
		}
		return nil, withStderr(fmt.Errorf("plugin %q (%s) pid %d: %w", spec.Plugin, path, inst.pid, err), inst.stderr)
	}
	inst.startedAt = time.Now()
	return inst, nil
}

// open finds, pins and starts the plugin process of p's spec and dispenses
// its connection, with the spec it was started for.
func (p *process) open() (*instance, string, PluginSpec, error) {
	h, log := p.host, p.log
	spec, gen := p.currentSpec()
	path, err := h.find(spec.Plugin)
	if err != nil {
		return nil, "", spec, err
	}
	inst := &instance{cmd: exec.Command(path), stderr: newStderrTail(), specGen: gen}
	inst.cmd.Env = append(inst.cmd.Env, sdk.LogLevelEnv+"="+sdk.LevelName(lowestLevel(log)))

	cfg := &plugin.ClientConfig{
		HandshakeConfig:  sdk.Handshake,
		VersionedPlugins: p.fam.Versions,
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

	if err := inst.connect(p.fam); err != nil {
		inst.stop(true, h.timing.stopTimeout)
		if errors.Is(err, plugin.ErrChecksumsDoNotMatch) {
			actual, sumErr := fileChecksum(path)
			if sumErr != nil {
				actual = "unknown (" + sumErr.Error() + ")"
			}
			return nil, path, spec, &ChecksumError{Plugin: spec.Plugin, Path: path, Expected: formatChecksum(want), Actual: actual}
		}
		return nil, path, spec, withStderr(fmt.Errorf("plugin %q (%s): %w", spec.Plugin, path, inst.startError(p.fam.Name, err)), inst.stderr)
	}
	return inst, path, spec, nil
}

// connect starts the process and dispenses the connection of the
// negotiated protocol version.
func (inst *instance) connect(f *Family[any]) error {
	rpc, err := inst.client.Client()
	if err != nil {
		return err
	}
	if inst.cmd.Process != nil {
		inst.pid = inst.cmd.Process.Pid
	}
	inst.version = inst.client.NegotiatedVersion()
	if inst.version != f.Version {
		// go-plugin only negotiates versions we offer; this guards a version
		// added to the SDK's versioned plugins before the host learnt to drive it.
		return fmt.Errorf("%s protocol version %d negotiated, but this agent drives only version %d",
			f.Name, inst.version, f.Version)
	}
	raw, err := rpc.Dispense(f.PluginName)
	if err != nil {
		return fmt.Errorf("dispense %q: %w", f.PluginName, err)
	}
	d, ok := raw.(sdk.Dispensed)
	if !ok {
		return fmt.Errorf("dispense %q: got %T, not a %s client", f.PluginName, raw, f.Name)
	}
	inst.conn, inst.exitedChan = d.Connection()
	return nil
}

// setUp describes the process, checks its configuration and, when
// configure is set, configures it, as every family requires after every
// start of the process. Each call has its own timeout.
func (inst *instance) setUp(ctx context.Context, p *process, spec PluginSpec, configure bool) error {
	timeout := p.host.timing.setupTimeout
	callCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := inst.describeAs(callCtx, p.fam); err != nil {
		return err
	}
	for _, c := range inst.describe.GetCapabilities() {
		if !slices.Contains(p.fam.Capabilities, c) {
			p.log.Warn("the plugin declares a capability this agent does not know; ignored", "capability", c)
		}
	}

	callCtx, cancel = context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := inst.validate(callCtx, spec); err != nil {
		return err
	}
	if !configure {
		return nil
	}

	callCtx, cancel = context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := inst.configure(callCtx, p.fam, spec); err != nil {
		return fmt.Errorf("configure: %w", err)
	}
	return nil
}

// describeAs calls the base protocol's Describe, or the family's own for a
// plugin without the base, and checks that the plugin is of family f.
func (inst *instance) describeAs(ctx context.Context, f *Family[any]) error {
	notFamily := func(err error) error {
		return fmt.Errorf("describe: the plugin does not serve the %s protocol (is it a %s plugin?): %w", f.Name, f.Name, err)
	}
	desc, err := pluginv1.NewPluginClient(inst.conn).Describe(ctx, &pluginv1.DescribeRequest{})
	switch {
	case err == nil:
		inst.base = true
		if desc.GetFamily() != f.Name {
			return notFamily(fmt.Errorf("it says it is a %q plugin", desc.GetFamily()))
		}
	case status.Code(err) == codes.Unimplemented && f.Describe != nil:
		// A plugin built before the base protocol: its family's own call.
		desc, err = f.Describe(ctx, inst.conn)
		if status.Code(err) == codes.Unimplemented {
			// go-plugin dispenses whatever the host asks for; a binary of
			// another family only shows itself at the first call.
			return notFamily(err)
		}
		if err != nil {
			return fmt.Errorf("describe: %w", err)
		}
	case status.Code(err) == codes.Unimplemented:
		return notFamily(err)
	default:
		return fmt.Errorf("describe: %w", err)
	}
	inst.describe = desc
	return nil
}

// validate asks the plugin to check spec's configuration (the base
// protocol's ValidateConfig); its violations are a *ConfigError. A plugin
// without the base, or without ValidateConfig, checks it in Configure only.
func (inst *instance) validate(ctx context.Context, spec PluginSpec) error {
	if !inst.base {
		return nil
	}
	resp, err := pluginv1.NewPluginClient(inst.conn).ValidateConfig(ctx, &pluginv1.ValidateConfigRequest{Config: spec.Config, Nodes: spec.Nodes})
	if status.Code(err) == codes.Unimplemented {
		return nil
	}
	if err != nil {
		return fmt.Errorf("validate config: %w", err)
	}
	if len(resp.GetViolations()) > 0 {
		return &ConfigError{Plugin: spec.Name, Violations: resp.GetViolations()}
	}
	return nil
}

// configure calls Configure: the base protocol's, or the family's own for a
// plugin without the base.
func (inst *instance) configure(ctx context.Context, f *Family[any], spec PluginSpec) error {
	if inst.base {
		_, err := pluginv1.NewPluginClient(inst.conn).Configure(ctx, spec.configureRequest())
		return err
	}
	return f.Configure(ctx, inst.conn, spec.configureRequest())
}

// check asks go-plugin's health service of the process, as Client.Ping does,
// but bounded by a timeout: Ping would wait forever on a hung plugin.
func (inst *instance) check(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	_, err := grpc_health_v1.NewHealthClient(inst.conn).Check(ctx,
		&grpc_health_v1.HealthCheckRequest{Service: plugin.GRPCServiceName})
	return err
}

// exited is closed once the process has exited.
func (inst *instance) exited() <-chan struct{} { return inst.exitedChan }

// exitError says how the process ended. Call it once exited() is closed.
func (inst *instance) exitError() error {
	err := fmt.Errorf("plugin process %d exited", inst.pid)
	if ps := inst.cmd.ProcessState; ps != nil {
		err = fmt.Errorf("plugin process %d exited: %s", inst.pid, ps)
	}
	return withStderr(err, inst.stderr)
}

// startError rewords go-plugin's start error: its first line only (the rest
// is generic advice), and how the process ended when it ended by itself. The
// plugin's stderr, added by the caller, usually says why.
func (inst *instance) startError(family string, err error) error {
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
func (inst *instance) stop(force bool, timeout time.Duration) {
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
