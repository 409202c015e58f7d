package conformance

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/fedlet/fedlet/plugins/pluginhost"
	pluginv1 "github.com/fedlet/fedlet/plugins/proto/plugin/v1"
	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// processName names the plugin process in the host's log.
const processName = "conformance"

// stopTimeout bounds the wait for the plugin host to stop the process.
const stopTimeout = 30 * time.Second

// process is the plugin process under test (binary mode), supervised by
// the agent's own plugin host, which restarts it when it dies.
type process struct {
	rt     *pluginhost.Runtime
	path   string // absolute, symlinks resolved: what /proc/PID/exe shows
	cancel context.CancelFunc
}

// Stages of a plugin's start, in the order the host goes through them.
const (
	stageHandshake = "handshake" // exec, handshake cookie, AutoMTLS, version negotiation
	stageDescribe  = "describe"
	stageConfigure = "configure"
)

// startError says at which stage the plugin's start failed.
type startError struct {
	stage string
	err   error
}

func (e *startError) Error() string { return e.err.Error() }

// startPlugin launches the plugin as the agent does: found by name in its
// directory, pinned when a checksum is given, configured for cfg.Node.
func startPlugin(ctx context.Context, cfg Config) (target, error) {
	path, err := filepath.Abs(cfg.Plugin)
	if err != nil {
		return nil, &startError{stageHandshake, fmt.Errorf("plugin path %s: %w", cfg.Plugin, err)}
	}
	if resolved, err := filepath.EvalSymlinks(path); err == nil {
		path = resolved
	}
	hostCfg := pluginhost.Config{Dirs: []string{filepath.Dir(path)}}
	if cfg.Checksum != "" {
		hostCfg.Checksums = map[string]string{filepath.Base(path): cfg.Checksum}
	}
	host, err := pluginhost.New(hostCfg, cfg.Log)
	if err != nil {
		return nil, &startError{stageHandshake, err}
	}
	// The process lives until close, not until the caller's context ends
	// mid-check: its own calls are bounded by the caller's context.
	pctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	rt, err := host.StartRuntime(pctx, pluginhost.RuntimeSpec{
		Name:   processName,
		Plugin: filepath.Base(path),
		Config: cfg.PluginConfig,
		Nodes:  []string{cfg.Node},
	})
	if err != nil {
		cancel()
		return nil, &startError{startStage(err), err}
	}
	return &process{rt: rt, path: path, cancel: cancel}, nil
}

// startStage tells from the host's error which stage of the start failed:
// the host calls Describe, ValidateConfig then Configure once the process is
// connected, and says which failed. A config the plugin finds wrong fails
// the configure stage, whichever of the two calls said so.
func startStage(err error) string {
	msg := err.Error()
	var configErr *pluginhost.ConfigError
	switch {
	case strings.Contains(msg, ": describe: "):
		return stageDescribe
	case errors.As(err, &configErr), strings.Contains(msg, ": validate config: "), strings.Contains(msg, ": configure: "):
		return stageConfigure
	}
	return stageHandshake
}

func (p *process) client() runtimev1.RuntimeClient { return p.rt.Client() }

func (p *process) describe() *pluginv1.DescribeResponse { return p.rt.Describe() }

func (p *process) state() (bool, string, string) { return p.rt.State() }

func (p *process) live() bool { return len(p.livePids()) > 0 }

func (p *process) serving() (int, error) { return p.pid() }

// subscribe turns the plugin host's events into the kit's.
func (p *process) subscribe() (<-chan lifeEvent, func()) {
	events, unsubscribe := p.rt.Subscribe()
	out := make(chan lifeEvent, cap(events))
	done := make(chan struct{})
	go func() {
		defer close(out)
		for ev := range events {
			select {
			case out <- lifeEvent{up: ev.Kind == pluginhost.Started, reason: ev.Reason, message: ev.Message}:
			case <-done:
				return
			}
		}
	}()
	var once sync.Once
	return out, func() { once.Do(func() { close(done); unsubscribe() }) }
}

// kill sends SIGKILL to the process with that pid; the host restarts it.
func (p *process) kill(pid int) error {
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return fmt.Errorf("kill -9 the plugin process %d: %w", pid, err)
	}
	return nil
}

// stop stops the process and waits until the host has let it go.
func (p *process) stop() error {
	p.cancel()
	select {
	case <-p.rt.Done():
		return nil
	case <-time.After(stopTimeout):
		return fmt.Errorf("the plugin host did not stop the plugin within %v", stopTimeout)
	}
}

// pid returns the process id of the plugin process now serving: the child
// of this process running the plugin's binary.
func (p *process) pid() (int, error) {
	pids := p.livePids()
	switch len(pids) {
	case 0:
		return 0, errors.New("find the plugin process: no child of this process runs " + p.path)
	case 1:
		return pids[0], nil
	}
	return 0, fmt.Errorf("find the plugin process: several children of this process run %s: %v", p.path, pids)
}

// livePids lists the children of this process that run the plugin's
// binary; a process that has exited (a zombie) has no executable and is
// left out.
func (p *process) livePids() []int {
	me := os.Getpid()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var found []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || parentOf(pid) != me {
			continue
		}
		exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		if err == nil && exe == p.path {
			found = append(found, pid)
		}
	}
	return found
}

// parentOf reads a process's parent pid from /proc/PID/stat; -1 when it
// cannot be read.
func parentOf(pid int) int {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return -1
	}
	// "pid (comm) state ppid ...": comm may hold spaces and parentheses.
	i := strings.LastIndexByte(string(data), ')')
	if i < 0 {
		return -1
	}
	fields := strings.Fields(string(data[i+1:]))
	if len(fields) < 2 {
		return -1
	}
	ppid, err := strconv.Atoi(fields[1])
	if err != nil {
		return -1
	}
	return ppid
}
