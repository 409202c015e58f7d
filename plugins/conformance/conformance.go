// Package conformance is fedlet's conformance kit for runtime plugins: it
// launches a plugin binary through the agent's own plugin host (go-plugin,
// AutoMTLS, the handshake, protocol version negotiation, Describe then
// Configure) and checks, one rule of the runtime protocol at a time, that the
// plugin behaves as the agent relies on it to.
//
// Which rules depends on what the plugin declares in Describe: a plugin
// with CAPABILITY_WHOLE_PODS (a member cluster behind a virtual node) is
// checked against the pod-level calls (WholePodSuite), any other against
// the container-level ones (ContainerSuite).
//
// The `fedlet plugin conform` command runs it and prints a report; a Go test
// runs it with Test, one subtest per check.
//
// A plugin author can also check an implementation without building a
// binary: RunServer and TestServer serve it over gRPC inside the calling
// process, through the SDK's go-plugin binding, and run the same checks
// (in-process mode). The check that kills the plugin there stops the
// server abruptly, drops the implementation and serves a fresh one made by
// the author's constructor, so adoption is still checked from what the
// backend really runs.
//
// Each check makes its own pods, with fresh random UIDs, and removes them
// when it ends, whatever its result. The checks run one after the other
// against one plugin process (one of them kills it and lets the host restart
// it), on one node that the plugin is configured to serve.
package conformance

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"time"

	"github.com/fedlet/fedlet/plugins/sdk"
)

// Defaults of Config.
const (
	DefaultNode    = "conformance-node"
	DefaultTimeout = time.Minute
)

// Config says which plugin to check, and how.
type Config struct {
	// Plugin is the path of the plugin binary (binary mode only; RunServer
	// and TestServer ignore it, and Checksum). The kit's plugin host looks
	// for it in its directory, under its base name, as the agent's does.
	Plugin string
	// Checksum, when set, pins the binary: "sha256:<64 hex digits>".
	Checksum string
	// PluginConfig is the plugin's own configuration (JSON), handed to
	// Configure as the agent's config file would.
	PluginConfig []byte
	// Node is the node every call names; DefaultNode when empty.
	Node string
	// Image is an image the backend can pull and run, with a POSIX shell and
	// the echo, sleep, cat, id, mkdir, printf, pwd, stty, touch, wc and
	// httpd (busybox's: -f -p -h) commands in its PATH, and the user nobody
	// (UID and GID 65534) in its /etc/passwd: busybox has them all. A
	// whole-pod backend runs it in the pods the kit hands over.
	Image string
	// Timeout bounds each call to the plugin, and each wait for a container
	// or a whole pod to reach a state; DefaultTimeout when zero. A member
	// cluster schedules, pulls and starts a pod in tens of seconds on a busy
	// machine: give it minutes.
	Timeout time.Duration
	// Run, when set, selects the checks whose names it matches.
	Run *regexp.Regexp
	// Log receives the plugin host's records and the plugin's own; nil
	// discards them.
	Log *slog.Logger
	// ServeOptions, in in-process mode, are how the SDK serves the
	// implementation, as the plugin's main would give them to
	// sdk.ServeRuntime (sdk.WithDescription, say); binary mode ignores
	// them, since the binary's main gives its own.
	ServeOptions []sdk.ServeOption
}

// withDefaults completes the Config of binary mode, which needs a binary.
func (c Config) withDefaults() (Config, error) {
	if c.Plugin == "" {
		return c, errors.New("conformance: no plugin binary given")
	}
	return c.common(), nil
}

// common fills in the defaults both modes share.
func (c Config) common() Config {
	if c.Node == "" {
		c.Node = DefaultNode
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Log == nil {
		c.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return c
}

// Check is one rule of the runtime protocol and the way the kit verifies it.
type Check struct {
	// Name is short, lower-case and hyphenated ("logs-follow").
	Name string
	// Rule is the protocol rule the check verifies, as the protocol states
	// it.
	Rule string

	run func(*probe)
}

// Suite is a set of checks: the container-level protocol, or the
// pod-level one of a backend that runs whole pods.
type Suite string

const (
	// ContainerSuite checks sandboxes, images, containers, their logs,
	// exec, attach and port-forward: the protocol of a plugin the agent
	// drives step by step.
	ContainerSuite Suite = "containers"
	// WholePodSuite checks CreatePod, DeletePod, ListPods and WatchPods,
	// and logs, exec, attach and port-forward of the pods so run: the
	// protocol of a plugin with CAPABILITY_WHOLE_PODS. Its container-level
	// calls must answer Unimplemented.
	WholePodSuite Suite = "whole-pods"
)

// Checks returns the checks of the suite, in the order they run.
func (s Suite) Checks() []Check {
	if s == WholePodSuite {
		return WholePodChecks()
	}
	return Checks()
}

// Checks returns every check of the container-level suite
// (ContainerSuite), in the order they run.
func Checks() []Check {
	return concat(
		startChecks, nodeChecks, sandboxChecks, imageChecks, containerChecks,
		logChecks, stopChecks, specChecks, execChecks, attachChecks,
		portForwardChecks, restartChecks, badInputChecks,
	)
}

// WholePodChecks returns every check of the whole-pod suite
// (WholePodSuite), in the order they run.
func WholePodChecks() []Check {
	return concat(
		startChecks, wholePodPluginChecks, wholePodChecks, wholePodStreamChecks,
		wholePodRestartChecks, wholePodBadInputChecks,
	)
}

func concat(groups ...[]Check) []Check {
	var all []Check
	for _, g := range groups {
		all = append(all, g...)
	}
	return all
}

func selectChecks(s Suite, run *regexp.Regexp) []Check {
	var out []Check
	for _, c := range s.Checks() {
		if run == nil || run.MatchString(c.Name) {
			out = append(out, c)
		}
	}
	return out
}

// Outcome is the result of one check.
type Outcome struct {
	Check Check
	// Err says why the check failed; nil when it passed.
	Err      error
	Duration time.Duration
}

// Passed says whether the check passed.
func (o Outcome) Passed() bool { return o.Err == nil }

// Result is the outcome of every check that ran, in order.
type Result struct {
	// Suite is the suite that ran, chosen from the plugin's Describe; Why
	// says why.
	Suite    Suite
	Why      string
	Outcomes []Outcome
}

// Passed counts the checks that passed.
func (r Result) Passed() int {
	n := 0
	for _, o := range r.Outcomes {
		if o.Passed() {
			n++
		}
	}
	return n
}

// Failed counts the checks that failed.
func (r Result) Failed() int { return len(r.Outcomes) - r.Passed() }

// OK says whether every check passed (and at least one ran).
func (r Result) OK() bool { return len(r.Outcomes) > 0 && r.Failed() == 0 }

// Summary is "N passed, M failed".
func (r Result) Summary() string {
	return fmt.Sprintf("%d passed, %d failed", r.Passed(), r.Failed())
}

// Reporter is told the outcome of each check as soon as it is known.
type Reporter interface {
	Report(Outcome)
}

// SuiteReporter is a Reporter that is also told, before the first
// outcome, which suite runs and why.
type SuiteReporter interface {
	Reporter
	ReportSuite(s Suite, why string)
}

// ReporterFunc turns a function into a Reporter.
type ReporterFunc func(Outcome)

// Report calls f.
func (f ReporterFunc) Report(o Outcome) { f(o) }

// Run launches the plugin, chooses the suite from what it declares in
// Describe, runs the selected checks of that suite against it one by one,
// telling report (which may be nil) of each outcome, stops the plugin and
// returns every outcome. A plugin that cannot be launched fails the checks
// that stage concerns and every check after it, with the reason.
func Run(ctx context.Context, cfg Config, report Reporter) Result {
	cfg, err := cfg.withDefaults()
	return run(ctx, cfg, err, startPlugin, report)
}

// run runs the kit with the plugin start gives, or, when cfgErr says the
// Config cannot start one, fails every check with it.
func run(ctx context.Context, cfg Config, cfgErr error, start starter, report Reporter) Result {
	if report == nil {
		report = ReporterFunc(func(Outcome) {})
	}
	var res Result
	add := func(o Outcome) {
		res.Outcomes = append(res.Outcomes, o)
		report.Report(o)
	}
	if cfgErr != nil {
		res.Suite, res.Why = ContainerSuite, "no plugin to ask which suite applies"
		reportSuite(report, res.Suite, res.Why)
		for _, c := range selectChecks(res.Suite, cfg.Run) {
			add(Outcome{Check: c, Err: cfgErr})
		}
		return res
	}
	s := newSuite(ctx, cfg, start)
	defer s.close()
	res.Suite, res.Why = s.choose()
	reportSuite(report, res.Suite, res.Why)
	for _, c := range selectChecks(res.Suite, cfg.Run) {
		add(s.run(ctx, c))
	}
	return res
}

func reportSuite(r Reporter, s Suite, why string) {
	if sr, ok := r.(SuiteReporter); ok {
		sr.ReportSuite(s, why)
	}
}
