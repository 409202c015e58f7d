package pod

import (
	"context"
	"errors"
	"io"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// The kubelet's bounds on a termination message read from the logs.
const (
	logMessageLines = 80
	logMessageBytes = 2048
	logReadTimeout  = 30 * time.Second
)

// readLogMessages gives each container with terminationMessagePolicy
// FallbackToLogsOnError that failed without writing a termination message
// the end of its log instead, as the kubelet does: the last 2 KiB of its
// last 80 lines. The runtime reads the message file itself; the log is read
// here, once per attempt, and kept until the pod is forgotten.
func (c *Steps) readLogMessages(ctx context.Context, pod *corev1.Pod) {
	rt := c.state.get(pod.UID)
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
			if c.hasLogMessage(pod.UID, st.Id) {
				continue
			}
			msg, err := c.logTail(ctx, pod.UID, ctr.Name, previous)
			if err != nil {
				if ctx.Err() == nil {
					c.log.Warn("read the log of a failed container for its termination message", "pod", pod.Namespace+"/"+pod.Name, "container", ctr.Name, "err", err)
				}
				continue
			}
			c.setLogMessage(pod.UID, st.Id, msg)
		}
	}
	c.keepLogMessages(pod.UID, shown)
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
func (c *Steps) logTail(ctx context.Context, uid types.UID, container string, previous bool) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, logReadTimeout)
	defer cancel()
	stream, err := c.runtime.ContainerLogs(ctx, &runtimev1.ContainerLogsRequest{
		Node: c.node, PodUid: string(uid), Container: container,
		TailLines: logMessageLines, Previous: previous, Follow: !previous,
	})
	if err != nil {
		return "", err
	}
	var tail []byte
	for {
		chunk, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return string(tail), nil
		}
		if err != nil {
			return "", err
		}
		tail = append(tail, chunk.Data...)
		if len(tail) > logMessageBytes {
			tail = append(tail[:0], tail[len(tail)-logMessageBytes:]...)
		}
	}
}

func (c *Steps) hasLogMessage(uid types.UID, id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.logMessages[uid][id]
	return ok
}

func (c *Steps) setLogMessage(uid types.UID, id, msg string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.logMessages[uid] == nil {
		c.logMessages[uid] = map[string]string{}
	}
	c.logMessages[uid][id] = msg
}

// keepLogMessages forgets the messages of attempts no status shows any more.
func (c *Steps) keepLogMessages(uid types.UID, keep map[string]bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id := range c.logMessages[uid] {
		if !keep[id] {
			delete(c.logMessages[uid], id)
		}
	}
}

// logMessage is the termination message read from an attempt's log, if any.
func (c *Steps) logMessage(uid types.UID, id string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.logMessages[uid][id]
}
