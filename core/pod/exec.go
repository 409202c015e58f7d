package pod

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

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
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.runtime.Exec(ctx)
	if err != nil {
		return 0, "", "", fmt.Errorf("exec in container %s: %w", container, err)
	}
	start := &runtimev1.ExecStart{Node: c.node, PodUid: string(uid), Container: container, Command: cmd}
	if err := stream.Send(&runtimev1.ExecRequest{Request: &runtimev1.ExecRequest_Start{Start: start}}); err != nil {
		return 0, "", "", fmt.Errorf("exec in container %s: %w", container, err)
	}
	_ = stream.CloseSend()
	var out, errOut boundedBuffer
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return 0, out.String(), errOut.String(), errors.New("the runtime ended the exec without an exit code")
		}
		if err != nil {
			if ctx.Err() != nil {
				return 0, out.String(), errOut.String(), ctx.Err()
			}
			return 0, out.String(), errOut.String(), errors.New(status.Convert(err).Message())
		}
		switch r := resp.Response.(type) {
		case *runtimev1.ExecResponse_Stdout:
			_, _ = out.Write(r.Stdout)
		case *runtimev1.ExecResponse_Stderr:
			_, _ = errOut.Write(r.Stderr)
		case *runtimev1.ExecResponse_ExitCode:
			return r.ExitCode, out.String(), errOut.String(), nil
		}
	}
}

// boundedBuffer keeps the first hookOutputLimit bytes written to it.
type boundedBuffer struct{ bytes.Buffer }

func (b *boundedBuffer) Write(p []byte) (int, error) {
	if room := hookOutputLimit - b.Len(); room > 0 {
		b.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}
