package pod

import (
	"context"
	"log/slog"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/fedlet/fedlet/core/streams"
	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// The kubelet's bounds on a termination message read from the logs.
const (
	logMessageLines = 80
	logMessageBytes = 2048
	logReadTimeout  = 30 * time.Second
)

// terminationMessages are the termination messages read from the logs of
// containers with terminationMessagePolicy FallbackToLogsOnError, by pod and
// container ID. Reading a log is the one call made here.
type terminationMessages struct {
	runtime runtimev1.RuntimeClient
	node    string
	log     *slog.Logger

	mu    sync.Mutex
	byPod map[types.UID]map[string]string
}

func newTerminationMessages(runtime runtimev1.RuntimeClient, node string, log *slog.Logger) *terminationMessages {
	return &terminationMessages{runtime: runtime, node: node, log: log, byPod: map[types.UID]map[string]string{}}
}

// read gives each container with terminationMessagePolicy
// FallbackToLogsOnError that failed without writing a termination message
// the end of its log instead, as the kubelet does: the last 2 KiB of its
// last 80 lines. The runtime reads the message file itself; the log is read
// here, once per attempt, and kept until the pod is forgotten.
func (c *terminationMessages) read(ctx context.Context, pod *corev1.Pod, rt *podRuntime) {
	shown := map[string]bool{}
	for _, ctr := range allContainers(pod) {
		if ctr.TerminationMessagePolicy != corev1.TerminationMessageFallbackToLogsOnError {
			continue
		}
		for _, previous := range []bool{false, true} {
			st := rt.latest(ctr.Name)
			if previous {
				st = rt.previous(ctr.Name)
			}
			if !needsLogMessage(st) {
				continue
			}
			shown[st.Id] = true
			if c.has(pod.UID, st.Id) {
				continue
			}
			msg, err := c.logTail(ctx, pod.UID, ctr.Name, previous)
			if err != nil {
				if ctx.Err() == nil {
					c.log.Warn("read the log of a failed container for its termination message", "pod", pod.Namespace+"/"+pod.Name, "container", ctr.Name, "err", err)
				}
				continue
			}
			c.set(pod.UID, st.Id, msg)
		}
	}
	c.keep(pod.UID, shown)
}

// needsLogMessage says whether an attempt failed without a message. One
// that could not even start has no log to read.
func needsLogMessage(st *runtimev1.ContainerStatus) bool {
	return st != nil && st.State == runtimev1.ContainerState_CONTAINER_STATE_EXITED &&
		st.ExitCode != 0 && st.Message == "" && st.Reason != reasonStartError
}

// logTail reads the end of the newest (or the previous) attempt's log. It
// follows the newest one, which has exited: that returns once its log
// driver has written the last line.
func (c *terminationMessages) logTail(ctx context.Context, uid types.UID, container string, previous bool) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, logReadTimeout)
	defer cancel()
	var tail tailBuffer
	err := streams.Logs(ctx, c.runtime, &runtimev1.ContainerLogsRequest{
		Node: c.node, PodUid: string(uid), Container: container,
		TailLines: logMessageLines, Previous: previous, Follow: !previous,
	}, &tail)
	if err != nil {
		return "", err
	}
	return string(tail), nil
}

// tailBuffer keeps the last logMessageBytes written to it.
type tailBuffer []byte

func (b *tailBuffer) Write(p []byte) (int, error) {
	*b = append(*b, p...)
	if len(*b) > logMessageBytes {
		*b = append((*b)[:0], (*b)[len(*b)-logMessageBytes:]...)
	}
	return len(p), nil
}

func (c *terminationMessages) has(uid types.UID, id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.byPod[uid][id]
	return ok
}

func (c *terminationMessages) set(uid types.UID, id, msg string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byPod[uid] == nil {
		c.byPod[uid] = map[string]string{}
	}
	c.byPod[uid][id] = msg
}

// keep forgets the messages of attempts no status shows any more.
func (c *terminationMessages) keep(uid types.UID, keep map[string]bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id := range c.byPod[uid] {
		if !keep[id] {
			delete(c.byPod[uid], id)
		}
	}
}

// forget drops the pod's messages.
func (c *terminationMessages) forget(uid types.UID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.byPod, uid)
}

// message is the termination message read from an attempt's log, if any.
func (c *terminationMessages) message(uid types.UID, id string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.byPod[uid][id]
}
