package probe

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// execProbe runs the command in the container: exit code 0 is a success,
// any other a failure whose message is the command's output, and running
// past the timeout a failure too (the runtime kills the command when its
// context ends). A command the runtime could not run is Unknown.
func execProbe(ctx context.Context, ex Execer, t Target, cmd []string) Outcome {
	if ex == nil {
		return unknown("exec probes are not supported by this node")
	}
	code, out, err := ex.ExecSync(ctx, t.Pod.UID, t.Container.Name, cmd)
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return Outcome{Result: Failure, Message: fmt.Sprintf("command %q timed out", strings.Join(cmd, " "))}
		}
		return unknown("exec %q in container %s: %v", strings.Join(cmd, " "), t.Container.Name, err)
	}
	if code != 0 {
		return Outcome{Result: Failure, Message: out}
	}
	return Outcome{Result: Success, Message: out}
}
