package conformance

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	corev1 "k8s.io/api/core/v1"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// Logs, exec, attach and port-forward of whole pods: "called as for any
// runtime", so the rules are those of the container-level calls, with the
// containers of the pods CreatePod ran.
var wholePodStreamChecks = []Check{
	{
		Name: "pod-logs",
		Rule: "ContainerLogs streams a container's output in the kubelet's format: all of it (tail_lines negative), the last N lines (tail_lines), at most limit_bytes bytes, each line prefixed with its RFC 3339 time (timestamps)",
		run:  checkPodLogs,
	},
	{
		Name: "pod-logs-follow",
		Rule: "ContainerLogs with follow streams output as it comes, and the stream ends when the container has exited",
		run:  checkPodLogsFollow,
	},
	{
		Name: "pod-logs-previous",
		Rule: "ContainerLogs with previous gives the attempt before the newest, as `kubectl logs --previous`, of a container the backend restarted (the kit makes the first attempt fail through Exec)",
		run:  checkPodLogsPrevious,
	},
	{
		Name: "pod-exec",
		Rule: "Exec runs a command in a running container of the pod; the responses carry its stdout and stderr apart and, last, its exit code; later requests carry its stdin and its end (stdin_done); without stdin its stdin is empty; without a command it fails with InvalidArgument",
		run:  checkPodExec,
	},
	{
		Name: "pod-attach",
		Rule: "Attach with stdin writes to the stdin of a container started with stdin, and the responses carry the container's output from the moment of attaching; without stdin_once the container's stdin stays open after stdin_done, for the next attach",
		run:  checkPodAttach,
	},
	{
		Name: "pod-attach-stdin-refused",
		Rule: "Attach with stdin to a container not started with stdin fails with FailedPrecondition, and the plugin keeps serving (same process)",
		run:  checkPodAttachStdinRefused,
	},
	{
		Name: "pod-streams-not-running",
		Rule: "Exec in and Attach to a container of the pod that does not run (it has exited) fail with FailedPrecondition, and the plugin keeps serving (same process)",
		run:  checkPodStreamsNotRunning,
	},
	{
		Name: "pod-port-forward",
		Rule: "PortForward connects to a TCP port on the loopback of the pod's network namespace: two pods serving the same port each answer with their own page; data_done half-closes the connection, and the stream ends when the connection closes",
		run:  checkPodPortForward,
	},
	{
		Name: "pod-port-forward-closed-port",
		Rule: "PortForward to a port of the pod nothing listens on fails with Unavailable, and the plugin keeps serving (same process)",
		run:  checkPodPortForwardClosedPort,
	},
	{
		Name: "pod-streams-unknown",
		Rule: "ContainerLogs, Exec and Attach of a container the pod does not have, and the four calls for a pod the node does not run, fail with NotFound, and the plugin keeps serving (same process)",
		run:  checkPodStreamsUnknown,
	},
}

// runningPod creates a pod of the containers and waits until it runs.
func (p *probe) runningPod(containers ...corev1.Container) (*corev1.Pod, *runtimev1.PodRef) {
	pod := p.wholePod(containers...)
	p.createPod(pod, nil, nil)
	p.waitRunning(pod)
	return pod, podRef(pod)
}

func checkPodLogs(p *probe) {
	_, ref := p.runningPod(p.shell("app", "echo one; echo two; echo three; exec sleep 3600"))
	p.waitLog(ref, "app", "three\n")
	for _, c := range []struct {
		what string
		req  *runtimev1.ContainerLogsRequest
		want string
	}{
		{"all (tail_lines -1)", &runtimev1.ContainerLogsRequest{TailLines: -1}, lines("one", "two", "three")},
		{"tail_lines 2", &runtimev1.ContainerLogsRequest{TailLines: 2}, lines("two", "three")},
		{"tail_lines 10", &runtimev1.ContainerLogsRequest{TailLines: 10}, lines("one", "two", "three")},
		{"limit_bytes 4", &runtimev1.ContainerLogsRequest{TailLines: -1, LimitBytes: 4}, lines("one")},
	} {
		c.req.PodUid, c.req.Container = ref.GetUid(), "app"
		out, err := p.logs(c.req)
		if err != nil {
			p.Fatalf("ContainerLogs, %s: %v", c.what, err)
		}
		if out != c.want {
			p.Errorf("ContainerLogs, %s = %q, want %q", c.what, out, c.want)
		}
	}

	out, err := p.logs(&runtimev1.ContainerLogsRequest{PodUid: ref.GetUid(), Container: "app", TailLines: -1, Timestamps: true})
	if err != nil {
		p.Fatalf("ContainerLogs with timestamps: %v", err)
	}
	got := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	want := []string{"one", "two", "three"}
	if len(got) != len(want) {
		p.Fatalf("ContainerLogs with timestamps = %q, want %d lines", out, len(want))
	}
	for i, line := range got {
		ts, text, ok := strings.Cut(line, " ")
		if !ok || text != want[i] {
			p.Errorf("line %d %q with timestamps is not \"<time> %s\"", i+1, line, want[i])
			continue
		}
		if _, err := time.Parse(time.RFC3339Nano, ts); err != nil {
			p.Errorf("line %d %q: its time is not RFC 3339: %v", i+1, line, err)
		}
	}
}

func checkPodLogsFollow(p *probe) {
	pod := p.wholePod(p.shell("slow", "echo first; sleep 3; echo second"))
	pod.Spec.RestartPolicy = corev1.RestartPolicyNever
	p.createPod(pod, nil, nil)
	// Its log exists once it has started.
	p.waitPod(pod, "with container slow started", func(st *corev1.PodStatus) bool {
		cs := containerStatus(st, "slow")
		return cs != nil && (cs.State.Running != nil || cs.State.Terminated != nil)
	})
	ref := podRef(pod)
	out, err := p.logs(&runtimev1.ContainerLogsRequest{PodUid: ref.GetUid(), Container: "slow", TailLines: -1, Follow: true})
	if err != nil {
		p.Fatalf("ContainerLogs with follow (it must end by itself once the container exits, within %v): %v (output so far %q)",
			p.suite.cfg.Timeout, err, out)
	}
	if out != lines("first", "second") {
		p.Errorf("followed logs = %q, want %q: all output, ending when the container exits", out, lines("first", "second"))
	}
	p.waitPod(pod, "with container slow terminated, as the end of the followed log said", func(st *corev1.PodStatus) bool {
		cs := containerStatus(st, "slow")
		return cs != nil && cs.State.Terminated != nil
	})
}

func checkPodLogsPrevious(p *probe) {
	// Each attempt prints a random line, then waits for /tmp/stop and
	// fails. The kit makes the first attempt stop (through Exec); the
	// backend restarts it (restartPolicy Always), and the second attempt,
	// with a fresh filesystem, keeps running.
	pod := p.wholePod(p.shell("app", `echo "attempt $(cat /proc/sys/kernel/random/uuid)"; while [ ! -f /tmp/stop ]; do sleep 0.2; done; echo stopping; exit 1`))
	p.createPod(pod, nil, nil)
	p.waitRunning(pod)
	ref := podRef(pod)
	p.waitLog(ref, "app", "attempt ")
	first := p.allLogs(ref, "app")
	p.exec(ref, "app", &runtimev1.ExecStart{Command: []string{"touch", "/tmp/stop"}})
	// A restart waits for the backend's back-off (the kubelet's: 10s).
	p.waitPod(pod, "with container app running again after one restart", func(st *corev1.PodStatus) bool {
		cs := containerStatus(st, "app")
		return cs != nil && cs.RestartCount >= 1 && cs.State.Running != nil
	})
	p.waitLog(ref, "app", "attempt ")
	out, err := p.logs(&runtimev1.ContainerLogsRequest{PodUid: ref.GetUid(), Container: "app", TailLines: -1, Previous: true})
	if err != nil {
		p.Fatalf("ContainerLogs with previous: %v", err)
	}
	if want := first + "stopping\n"; out != want {
		p.Errorf("previous logs = %q, want the first attempt's %q", out, want)
	}
	if now := p.allLogs(ref, "app"); now == first || !strings.HasPrefix(now, "attempt ") || strings.Count(now, "\n") != 1 {
		p.Errorf("logs = %q, want the second attempt's alone: one line of another attempt than %q", now, first)
	}
}

func checkPodExec(p *probe) {
	_, ref := p.runningPod(p.shell("app", sleeperScript))
	out := p.exec(ref, "app", &runtimev1.ExecStart{Command: []string{"sh", "-c", "echo out; echo err >&2; exit 3"}})
	if out.stdout.String() != "out\n" || out.stderr.String() != "err\n" || out.exitCode != 3 {
		p.Errorf("exec answered %s; want stdout %q, stderr %q, exit code 3", out, "out\n", "err\n")
	}
	out = p.exec(ref, "app", &runtimev1.ExecStart{Command: []string{"cat"}, Stdin: true},
		execStdin("one\n"), execStdin("two\n"), execStdinDone)
	if out.stdout.String() != lines("one", "two") || out.stderr.String() != "" || out.exitCode != 0 {
		p.Errorf("cat with stdin %q then stdin_done answered %s; want stdout %q, nothing on stderr, exit code 0",
			lines("one", "two"), out, lines("one", "two"))
	}
	out = p.exec(ref, "app", &runtimev1.ExecStart{Command: []string{"cat"}})
	if out.stdout.String() != "" || out.exitCode != 0 {
		p.Errorf("cat without stdin answered %s; want no output and exit code 0", out)
	}
	p.expectRefused([]badCall{
		{"Exec without a command in a running container", codes.InvalidArgument, execRefusal(p.node(), ref.GetUid(), "app")},
	})
}

// attachSession is an Attach call whose output is read in the background
// while the check sends.
type attachSession struct {
	p       *probe
	what    string
	send    func(*runtimev1.AttachRequest) error
	changed chan struct{}
	cancel  context.CancelFunc
	done    chan struct{}

	mu  sync.Mutex
	out attachOutput
	err error // why the stream ended
}

func (p *probe) attachInBackground(ref *runtimev1.PodRef, container string, stdin bool) *attachSession {
	ctx, cancel := p.call()
	what := fmt.Sprintf("Attach to %s (stdin %v)", container, stdin)
	stream, err := p.rt().Attach(ctx)
	if err != nil {
		cancel()
		p.Fatalf("%s: %v", what, err)
	}
	s := &attachSession{p: p, what: what, send: stream.Send, changed: make(chan struct{}, 1), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for {
			resp, err := stream.Recv()
			s.mu.Lock()
			if err != nil {
				s.err = err
			} else {
				s.out.add(resp)
			}
			s.mu.Unlock()
			select {
			case s.changed <- struct{}{}:
			default:
			}
			if err != nil {
				return
			}
		}
	}()
	p.cleanup(func(context.Context) error { s.close(); return nil })
	s.sendOrFail(attachStart(&runtimev1.AttachStart{Node: p.node(), PodUid: ref.GetUid(), Container: container, Stdin: stdin}))
	return s
}

// close ends the call and waits for its reader.
func (s *attachSession) close() {
	s.cancel()
	<-s.done
}

func (s *attachSession) sendOrFail(req *runtimev1.AttachRequest) {
	if err := s.send(req); err != nil {
		s.mu.Lock()
		ended := s.err
		s.mu.Unlock()
		s.p.Fatalf("%s: send: %v (the stream: %v)", s.what, err, ended)
	}
}

func (s *attachSession) stdout() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.out.stdout.String()
}

// sayUntil sends line on stdin, again every second (a line sent before
// the backend's session is up may be lost to it), until the container's
// stdout holds want.
func (s *attachSession) sayUntil(line, want string) {
	p := s.p
	deadline := time.Now().Add(p.suite.cfg.Timeout)
	for {
		s.sendOrFail(&runtimev1.AttachRequest{Request: &runtimev1.AttachRequest_Stdin{Stdin: []byte(line)}})
		wait := time.NewTimer(time.Second)
	waiting:
		for {
			s.mu.Lock()
			stdout, out, err := s.out.stdout.String(), s.out.String(), s.err
			s.mu.Unlock()
			switch {
			case strings.Contains(stdout, want):
				wait.Stop()
				return
			case err != nil:
				wait.Stop()
				p.Fatalf("%s ended before the container answered %q to %q: %v (received: %s)", s.what, want, line, err, out)
			case time.Now().After(deadline):
				wait.Stop()
				p.Fatalf("%s: the container did not answer %q to %q within %v (received: %s)", s.what, want, line, p.suite.cfg.Timeout, out)
			}
			select {
			case <-s.changed:
			case <-wait.C:
				break waiting
			case <-p.ctx.Done():
				p.Fatalf("interrupted: %v", p.ctx.Err())
			}
		}
	}
}

func checkPodAttach(p *probe) {
	talk := p.shell("talk", `echo ready; while read line; do echo "got:$line"; done; echo eof; exec sleep 3600`)
	talk.Stdin = true
	_, ref := p.runningPod(talk)
	p.waitLog(ref, "talk", "ready\n")

	first := p.attachInBackground(ref, "talk", true)
	first.sayUntil("ping\n", "got:ping\n")
	if out := first.stdout(); strings.Contains(out, "ready") {
		p.Errorf("attached stdout %q holds ready, printed before the attach: want output from the moment of attaching", out)
	}
	first.sendOrFail(&runtimev1.AttachRequest{Request: &runtimev1.AttachRequest_StdinDone{StdinDone: true}})
	first.close()

	// The container was started without stdin_once: its stdin is still
	// open for the next attach.
	second := p.attachInBackground(ref, "talk", true)
	second.sayUntil("pong\n", "got:pong\n")
	second.close()
	if logs := p.allLogs(ref, "talk"); strings.Contains(logs, "eof") {
		p.Errorf("the container's log %q shows its stdin ended: stdin_done of an attach must keep the stdin of a container without stdin_once open", logs)
	}
}

func checkPodAttachStdinRefused(p *probe) {
	_, ref := p.runningPod(p.shell("quiet", sleeperScript))
	p.expectRefused([]badCall{
		{"Attach with stdin to a running container started without stdin", codes.FailedPrecondition, attachRefusal(p.node(), ref.GetUid(), "quiet", true)},
	})
}

func checkPodStreamsNotRunning(p *probe) {
	pod := p.wholePod(p.shell("done", "echo done"), p.shell("app", sleeperScript))
	pod.Spec.RestartPolicy = corev1.RestartPolicyNever
	p.createPod(pod, nil, nil)
	p.waitPod(pod, "with container done terminated and app running", func(st *corev1.PodStatus) bool {
		done, app := containerStatus(st, "done"), containerStatus(st, "app")
		return done != nil && done.State.Terminated != nil && app != nil && app.State.Running != nil
	})
	uid, fp := string(pod.UID), codes.FailedPrecondition
	p.expectRefused([]badCall{
		{"Exec in an exited container", fp, execRefusal(p.node(), uid, "done", "true")},
		{"Attach to an exited container", fp, attachRefusal(p.node(), uid, "done", false)},
	})
}

func checkPodPortForward(p *probe) {
	var refs []*runtimev1.PodRef
	var pods []*corev1.Pod
	for range 2 {
		pod := p.wholePod()
		pod.Spec.Containers = []corev1.Container{p.shell("web", fmt.Sprintf(
			"mkdir -p /tmp/www && printf '%%s' 'page of %s' > /tmp/www/index.html && exec httpd -f -p 127.0.0.1:%d -h /tmp/www", pod.UID, webPort))}
		p.createPod(pod, nil, nil)
		pods, refs = append(pods, pod), append(refs, podRef(pod))
	}
	for _, pod := range pods {
		p.waitRunning(pod)
	}
	p.expectOwnPages(refs)
}

func checkPodPortForwardClosedPort(p *probe) {
	_, ref := p.runningPod(p.shell("app", sleeperScript))
	node := p.node()
	p.expectRefused([]badCall{
		{fmt.Sprintf("PortForward to port %d of a running pod, where nothing listens", webPort+1), codes.Unavailable,
			portForwardRefusal(node, ref.GetUid(), webPort+1)},
	})
}

// portForwardRefusal is a PortForward call that must be refused.
func portForwardRefusal(node, podUID string, port int32) func(context.Context, runtimev1.RuntimeClient) error {
	start := &runtimev1.PortForwardRequest{Request: &runtimev1.PortForwardRequest_Start{
		Start: &runtimev1.PortForwardStart{Node: node, PodUid: podUID, Port: port},
	}}
	return func(ctx context.Context, rt runtimev1.RuntimeClient) error {
		return firstAnswer(ctx, rt.PortForward, start)
	}
}

// logsRefusal is a ContainerLogs call that must be refused.
func logsRefusal(node, podUID, container string) func(context.Context, runtimev1.RuntimeClient) error {
	return func(ctx context.Context, rt runtimev1.RuntimeClient) error {
		s, err := rt.ContainerLogs(ctx, &runtimev1.ContainerLogsRequest{Node: node, PodUid: podUID, Container: container, TailLines: -1})
		if err != nil {
			return err
		}
		return firstRecv(s.Recv)
	}
}

func checkPodStreamsUnknown(p *probe) {
	_, ref := p.runningPod(p.shell("app", sleeperScript))
	node, uid, unknownPod, nf := p.node(), ref.GetUid(), newUID(), codes.NotFound
	p.expectRefused([]badCall{
		{"ContainerLogs of a container the pod does not have", nf, logsRefusal(node, uid, "unknown")},
		{"Exec in a container the pod does not have", nf, execRefusal(node, uid, "unknown", "true")},
		{"Attach to a container the pod does not have", nf, attachRefusal(node, uid, "unknown", false)},
		{"ContainerLogs of a pod the node does not run", nf, logsRefusal(node, unknownPod, "app")},
		{"Exec in a pod the node does not run", nf, execRefusal(node, unknownPod, "app", "true")},
		{"Attach to a pod the node does not run", nf, attachRefusal(node, unknownPod, "app", false)},
		{"PortForward to a pod the node does not run", nf, portForwardRefusal(node, unknownPod, webPort)},
	})
}
