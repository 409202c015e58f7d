package conformance

import (
	"fmt"
	"time"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// ContainerSpec: what the container's process sees of its spec.
var specChecks = []Check{
	{
		Name: "spec-env-working-dir",
		Rule: "a container's env and working_dir are its process's environment and working directory",
		run:  checkSpecEnvWorkingDir,
	},
	{
		Name: "spec-args",
		Rule: "a container's args follow its command, as the kubelet runs them",
		run:  checkSpecArgs,
	},
	{
		Name: "spec-read-only-root",
		Rule: "security.read_only_root_filesystem makes the container's root filesystem refuse writes",
		run:  checkSpecReadOnlyRoot,
	},
	{
		Name: "spec-run-as-user",
		Rule: "security.run_as_user and run_as_group are the UID and primary GID of the container's processes; with run_as_user and no run_as_group the GID is the user's in the image's /etc/passwd, else 0",
		run:  checkSpecRunAsUser,
	},
	{
		Name: "spec-seccomp",
		Rule: "security.seccomp SECCOMP_RUNTIME_DEFAULT puts the container's processes under a seccomp filter (Seccomp: 2 in /proc/self/status); SECCOMP_UNCONFINED under none",
		run:  checkSpecSeccomp,
	},
	{
		Name: "spec-termination-message",
		Rule: "termination_message_path names a fresh, writable, empty file of the attempt, mounted in the container; what the container wrote there is its ContainerStatus.message when it exits",
		run:  checkSpecTerminationMessage,
	},
	{
		Name: "spec-memory-limit",
		Rule: "resources.memory_limit_bytes is the container's memory limit: a container killed for exceeding it exits with reason OOMKilled",
		run:  checkSpecMemoryLimit,
	},
}

// spec is the ContainerSpec of a container running `sh -c script`.
func (p *probe) spec(name, script string) *runtimev1.ContainerSpec {
	return p.startRequest(nil, name, 0, script).GetContainer()
}

// runToExit starts attempt 0 of the container in the pod, waits until it
// has exited and returns its status and all its output.
func (p *probe) runToExit(pod *runtimev1.PodRef, spec *runtimev1.ContainerSpec) (*runtimev1.ContainerStatus, string) {
	p.startWith(&runtimev1.StartContainerRequest{Node: p.node(), Pod: pod, Container: spec})
	st := p.waitExited(pod, spec.GetName(), 0)
	return st, p.allLogs(pod, spec.GetName())
}

// wantOutput fails the check unless the container exited 0 having printed
// want.
func (p *probe) wantOutput(what string, st *runtimev1.ContainerStatus, out, want string) {
	if out != want || st.GetExitCode() != 0 {
		p.Errorf("%s: the container printed %q and exited (%s); want %q and exit code 0", what, out, describeStatus(st), want)
	}
}

func checkSpecEnvWorkingDir(p *probe) {
	pod := p.podWithImage()
	spec := p.spec("env", `echo "$GREETING|$SPACED"; pwd`)
	spec.Env = []*runtimev1.KeyValue{{Key: "GREETING", Value: "hello"}, {Key: "SPACED", Value: "two  words"}}
	spec.WorkingDir = "/tmp"
	st, out := p.runToExit(pod, spec)
	p.wantOutput("env GREETING=hello, SPACED='two  words', working_dir /tmp", st, out, "hello|two  words\n/tmp\n")
}

func checkSpecArgs(p *probe) {
	pod := p.podWithImage()
	spec := &runtimev1.ContainerSpec{
		Name:    "args",
		Image:   p.image(),
		Command: []string{"sh", "-c", `echo "$0|$1|$2"`},
		Args:    []string{"first", "second word", "third"},
	}
	st, out := p.runToExit(pod, spec)
	p.wantOutput(`command [sh -c 'echo "$0|$1|$2"'] with args [first, 'second word', third]`, st, out, "first|second word|third\n")
}

func checkSpecReadOnlyRoot(p *probe) {
	pod := p.podWithImage()
	const script = "if touch /written 2>/dev/null; then echo written; else echo refused; fi"
	// The same write on a writable root, so that a refusal means the
	// setting.
	st, out := p.runToExit(pod, p.spec("writable", script))
	p.wantOutput("writing / without read_only_root_filesystem", st, out, "written\n")
	ro := p.spec("read-only", script)
	ro.Security = &runtimev1.SecurityContext{ReadOnlyRootFilesystem: true}
	st, out = p.runToExit(pod, ro)
	p.wantOutput("writing / with read_only_root_filesystem", st, out, "refused\n")
}

func checkSpecRunAsUser(p *probe) {
	pod := p.podWithImage()
	id := func(n int64) *int64 { return &n }
	for _, c := range []struct {
		name      string
		uid, gid  *int64
		want      string
		situation string
	}{
		{"nobody", id(65534), nil, "65534 65534\n", "run_as_user 65534, nobody in the image's /etc/passwd, no run_as_group"},
		{"unnamed", id(1234), nil, "1234 0\n", "run_as_user 1234, not in the image's /etc/passwd, no run_as_group"},
		{"grouped", id(1234), id(5678), "1234 5678\n", "run_as_user 1234 and run_as_group 5678"},
	} {
		spec := p.spec(c.name, `echo "$(id -u) $(id -g)"`)
		spec.Security = &runtimev1.SecurityContext{RunAsUser: c.uid, RunAsGroup: c.gid}
		st, out := p.runToExit(pod, spec)
		p.wantOutput("`id -u` and `id -g` with "+c.situation, st, out, c.want)
	}
}

func checkSpecSeccomp(p *probe) {
	pod := p.podWithImage()
	const script = `grep '^Seccomp:' /proc/self/status | tr -d ' \t'`
	for _, c := range []struct {
		name string
		sec  *runtimev1.SecurityContext
		want string
	}{
		{"unconfined", &runtimev1.SecurityContext{}, "Seccomp:0\n"},
		{"runtime-default", &runtimev1.SecurityContext{Seccomp: runtimev1.Seccomp_SECCOMP_RUNTIME_DEFAULT}, "Seccomp:2\n"},
	} {
		spec := p.spec(c.name, script)
		spec.Security = c.sec
		st, out := p.runToExit(pod, spec)
		p.wantOutput("the seccomp mode with seccomp "+c.sec.GetSeccomp().String(), st, out, c.want)
	}
}

func checkSpecTerminationMessage(p *probe) {
	pod := p.podWithImage()
	const path = "/dev/termination-log"
	stream, stop := p.watch()
	defer stop()
	// Each attempt finds the file empty, and leaves a message of its own.
	for attempt := range uint32(2) {
		message := fmt.Sprintf("attempt %d\nended", attempt)
		req := p.startRequest(pod, "reporter", attempt, fmt.Sprintf(`echo "found $(wc -c < %s) bytes"; printf '%s' > %s; exit 2`, path, message, path))
		req.Container.TerminationMessagePath = path
		p.startWith(req)
		watched := p.watchUntil(stream, pod, "reporter", attempt, stateExited)
		if watched.GetMessage() != message || watched.GetExitCode() != 2 {
			p.Errorf("WatchContainers reported %s; want exit code 2 and message %q, what it wrote to %s", describeStatus(watched), message, path)
		}
		if listed := p.attempt(pod, "reporter", attempt); listed.GetMessage() != message {
			p.Errorf("ListSandboxes lists %s; want message %q, what it wrote to %s", describeStatus(listed), message, path)
		}
		if out := p.allLogs(pod, "reporter"); out != "found 0 bytes\n" {
			p.Errorf("attempt %d printed %q, want %q: a fresh, empty file", attempt, out, "found 0 bytes\n")
		}
	}
}

func checkSpecMemoryLimit(p *probe) {
	pod := p.podWithImage()
	// The string doubles to 128 MiB, four times the limit; a container
	// that is not stopped says so, rather than eating the host's memory.
	spec := p.spec("hog", "x=0123456789abcdef; i=0; while [ $i -lt 23 ]; do x=$x$x; i=$((i+1)); done; echo survived")
	spec.Resources = &runtimev1.Resources{MemoryLimitBytes: 32 << 20}
	p.startWith(&runtimev1.StartContainerRequest{Node: p.node(), Pod: pod, Container: spec})
	st := p.waitExited(pod, "hog", 0)
	// The kernel's OOM event and the exit may reach the plugin in either
	// order: the reason may be corrected once both have.
	deadline := time.Now().Add(p.suite.cfg.Timeout)
	for st.GetExitCode() == 137 && st.GetReason() != "OOMKilled" && time.Now().Before(deadline) {
		p.sleep(pollInterval)
		st = p.attempt(pod, "hog", 0)
	}
	if st.GetReason() != "OOMKilled" || st.GetExitCode() != 137 {
		p.Errorf("a container over its memory limit of 32 MiB lists %s (its log: %q); want exit code 137 and reason OOMKilled",
			describeStatus(st), p.allLogs(pod, "hog"))
	}
}
