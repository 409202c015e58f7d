package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// ExitError says that a child process of the cluster exited while the
// cluster was running, or before it became ready.
type ExitError struct {
	Name string // the component, e.g. "kube-apiserver"
	Log  string // its log file
	Err  error  // how it exited
	// Tail is the end of its log, which usually says why.
	Tail string
}

func (e *ExitError) Error() string {
	return fmt.Sprintf("%s exited unexpectedly (%v); its log is %s", e.Name, e.Err, e.Log)
}

func (e *ExitError) Unwrap() error { return e.Err }

// child is a process the cluster started and supervises. It runs in a
// process group of its own, so a terminal's Ctrl-C reaches only fedlet up,
// which stops the children in order.
type child struct {
	name     string
	log      string
	cmd      *exec.Cmd
	done     chan struct{} // closed once the process has exited and been reaped
	err      error         // the exit status; read after done
	stopping atomic.Bool
}

func (c *child) pid() int { return c.cmd.Process.Pid }

func (c *child) exitError() *ExitError {
	return &ExitError{Name: c.name, Log: c.log, Err: c.err, Tail: tailFile(c.log, 20)}
}

// exitError is the child's ExitError, named as the supervisor's.
func (s *supervisor) exitError(c *child) *ExitError {
	e := c.exitError()
	e.Name += s.whose
	return e
}

// supervisor starts children and reports the first one that dies unbidden.
type supervisor struct {
	logs   func(name string) string
	spawn  chan spawnRequest
	quit   chan struct{}
	failed chan error // buffered: the first unexpected exit
	// whose says whose children these are in an ExitError's Name, for a
	// member cluster whose failures its hub reports: " of member-1".
	whose string

	mu       sync.Mutex
	children []*child
	stopped  bool
}

type spawnRequest struct {
	cmd    *exec.Cmd
	result chan error
}

// newSupervisor starts a supervisor whose children's logs are at logs(name).
// A member cluster's supervisor is given its hub's failed channel, so that
// the first failure anywhere in the federation is reported; otherwise
// failed is nil and a channel of its own is made.
func newSupervisor(logs func(name string) string, failed chan error, whose string) *supervisor {
	if failed == nil {
		failed = make(chan error, 1)
	}
	s := &supervisor{
		logs:   logs,
		spawn:  make(chan spawnRequest),
		quit:   make(chan struct{}),
		failed: failed,
		whose:  whose,
	}
	go s.spawnLoop()
	return s
}

// spawnLoop forks every child from one locked OS thread. Children ask the
// kernel for SIGKILL when the thread that forked them exits (Pdeathsig), so
// they die with fedlet up however it ends, and never earlier: this thread
// lives until close.
func (s *supervisor) spawnLoop() {
	runtime.LockOSThread()
	// No UnlockOSThread: the thread exits with this goroutine.
	for {
		select {
		case r := <-s.spawn:
			r.result <- r.cmd.Start()
		case <-s.quit:
			return
		}
	}
}

// close ends the spawning thread; any child still alive gets SIGKILL.
func (s *supervisor) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.stopped {
		s.stopped = true
		close(s.quit)
	}
}

// startOptions are what a child needs beyond its binary and arguments.
type startOptions struct {
	path string   // the binary; defaults to BinDir/<name>
	dir  string   // working directory
	env  []string // added to fedlet up's environment
	// dropEnv are prefixes of fedlet up's variables the child must not see.
	dropEnv []string
}

// childEnv is fedlet up's environment without o.dropEnv, plus o.env.
func (o startOptions) childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !slices.ContainsFunc(o.dropEnv, func(p string) bool { return strings.HasPrefix(kv, p) }) {
			env = append(env, kv)
		}
	}
	return append(env, o.env...)
}

// start runs path with args as the child name, its output appended to its log.
func (s *supervisor) start(name, path string, args []string, o startOptions) (*child, error) {
	logPath := s.logs(name)
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("start %s: open log: %w", name, err)
	}
	defer logFile.Close() // the child has its own descriptor
	fmt.Fprintf(logFile, "\n==== fedlet up %s: %s %s\n", time.Now().Format(time.RFC3339), path, strings.Join(args, " "))

	cmd := exec.Command(path, args...)
	cmd.Dir = o.dir
	cmd.Env = o.childEnv()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}

	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return nil, fmt.Errorf("start %s: the cluster is stopping", name)
	}
	req := spawnRequest{cmd: cmd, result: make(chan error, 1)}
	s.spawn <- req
	err = <-req.result
	if err != nil {
		s.mu.Unlock()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	c := &child{name: name, log: logPath, cmd: cmd, done: make(chan struct{})}
	s.children = append(s.children, c)
	s.mu.Unlock()

	go func() {
		c.err = cmd.Wait()
		if c.err == nil {
			c.err = errors.New("exit status 0")
		}
		close(c.done)
		if !c.stopping.Load() {
			select {
			case s.failed <- s.exitError(c):
			default:
			}
		}
	}()
	return c, nil
}

// stop ends a child: SIGTERM, then SIGKILL to its whole process group after
// timeout. Whatever else is left in its group is killed too.
func (c *child) stop(timeout time.Duration) error {
	err := c.stopLeader(timeout)
	// The group outlives its leader while any member lives: sweep it.
	syscall.Kill(-c.pid(), syscall.SIGKILL)
	return err
}

// stopLeader ends the child alone (SIGTERM, SIGKILL after timeout), leaving
// the rest of its process group alive.
func (c *child) stopLeader(timeout time.Duration) error {
	c.stopping.Store(true)
	var err error
	select {
	case <-c.done:
		// Already gone; an unexpected exit was reported when it happened.
	default:
		if e := syscall.Kill(c.pid(), syscall.SIGTERM); e != nil && !errors.Is(e, syscall.ESRCH) {
			err = fmt.Errorf("stop %s: %w", c.name, e)
		}
		select {
		case <-c.done:
		case <-time.After(timeout):
			err = fmt.Errorf("stop %s: still running after %v, killed", c.name, timeout)
			syscall.Kill(c.pid(), syscall.SIGKILL)
			<-c.done
		}
	}
	return err
}

// waitReady polls check until it succeeds, and fails when the child exits,
// ctx ends, or timeout passes first. It returns how long it took.
func waitReady(ctx context.Context, c *child, timeout time.Duration, check func(context.Context) error) (time.Duration, error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last error // the last failure that says more than "time is up"
	for {
		attemptCtx, cancelAttempt := context.WithTimeout(ctx, 5*time.Second)
		err := check(attemptCtx)
		cancelAttempt()
		if err == nil {
			return time.Since(start), nil
		}
		if last == nil || ctx.Err() == nil {
			last = err
		}
		select {
		case <-c.done:
			return 0, fmt.Errorf("%s exited before it was ready (%v); its log is %s:\n%s", c.name, c.err, c.log, tailFile(c.log, 20))
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return 0, fmt.Errorf("%s not ready after %v: %v; its log is %s", c.name, timeout, last, c.log)
			}
			return 0, fmt.Errorf("wait for %s: %w", c.name, ctx.Err())
		case <-tick.C:
		}
	}
}

// tailFile returns the last n lines of a file, or "" when it cannot be read.
func tailFile(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	const limit = 64 << 10
	fi, err := f.Stat()
	if err != nil {
		return ""
	}
	off := max(fi.Size()-limit, 0)
	buf := make([]byte, fi.Size()-off)
	if _, err := f.ReadAt(buf, off); err != nil {
		return ""
	}
	lines := bytes.Split(bytes.TrimRight(buf, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// started lists the children in the order they were started.
// replace puts the restarted child in the place of the old one, which has
// exited, so that the stop order stays the start order.
func (s *supervisor) replace(old, restarted *child) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.children = slices.DeleteFunc(s.children, func(c *child) bool { return c == restarted })
	if i := slices.Index(s.children, old); i >= 0 {
		s.children[i] = restarted
		return
	}
	s.children = append(s.children, restarted)
}

func (s *supervisor) started() []*child {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.children)
}
