package streams_test

import (
	"bytes"
	"context"
	"fmt"

	"github.com/fedlet/fedlet/core/streams"
	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// A postStart hook or an exec probe: run a command without stdin and judge
// its exit code and output.
func ExampleExec() {
	var client runtimev1.RuntimeClient // the node's runtime plugin
	ctx := context.Background()
	var stdout, stderr bytes.Buffer
	start := &runtimev1.ExecStart{Node: "node-a", PodUid: "uid-1", Container: "app", Command: []string{"cat", "/tmp/ready"}}
	code, err := streams.Exec(ctx, client, start, nil, &stdout, &stderr)
	if err != nil {
		fmt.Println("the command did not run:", err)
		return
	}
	fmt.Println("exit", code, "output", stdout.String()+stderr.String())
}

// A termination message from the end of a failed attempt's log.
func ExampleLogs() {
	var client runtimev1.RuntimeClient // the node's runtime plugin
	ctx := context.Background()
	var tail bytes.Buffer
	req := &runtimev1.ContainerLogsRequest{Node: "node-a", PodUid: "uid-1", Container: "app", TailLines: 80, Previous: true}
	if err := streams.Logs(ctx, client, req, &tail); err != nil {
		fmt.Println("no log:", err)
		return
	}
	fmt.Println(tail.String())
}
