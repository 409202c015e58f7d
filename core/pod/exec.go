package pod

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/fedlet/fedlet/core/streams"
	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// hookOutputLimit bounds what is kept of a hook's or a probe's command output.
const hookOutputLimit = 10 << 10

// containerExec runs commands in containers through the runtime's Exec: the
// one Exec call of exec hooks and exec probes.
type containerExec struct {
	runtime runtimev1.RuntimeClient
	node    string
}

// sync runs a command in the container through the runtime's Exec and
// returns its output (stdout then stderr, bounded); a non-zero exit is an
// error carrying the code.
func (c containerExec) sync(ctx context.Context, pod *corev1.Pod, container string, cmd []string) (string, error) {
	code, stdout, stderr, err := c.run(ctx, pod.UID, container, cmd)
	if err != nil {
		return stdout + stderr, err
	}
	if code != 0 {
		return stdout + stderr, fmt.Errorf("command '%s' exited with %d: %s", strings.Join(cmd, " "), code, stderr)
	}
	return stdout + stderr, nil
}

// run runs a command in the container through the runtime's Exec
// until it exits or ctx ends (which ends the command), and returns its exit
// code and its output, each stream bounded. Hooks and exec probes run
// through it.
func (c containerExec) run(ctx context.Context, uid types.UID, container string, cmd []string) (code int32, stdout, stderr string, err error) {
	var out, errOut boundedBuffer
	start := &runtimev1.ExecStart{Node: c.node, PodUid: string(uid), Container: container, Command: cmd}
	// The runtime's errors name the container already.
	code, err = streams.Exec(ctx, c.runtime, start, nil, &out, &errOut)
	return code, out.String(), errOut.String(), err
}

// boundedBuffer keeps the first hookOutputLimit bytes written to it.
type boundedBuffer struct{ bytes.Buffer }

func (b *boundedBuffer) Write(p []byte) (int, error) {
	if room := hookOutputLimit - b.Len(); room > 0 {
		b.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}
