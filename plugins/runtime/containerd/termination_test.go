package containerd

import (
	"fmt"
	"strings"
	"testing"
	"time"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// A container writes its termination message, as a user other than root,
// to the path its spec names; the exit's status carries the message, cut to
// its end when it is too long for a label; a fresh attempt starts empty.
func TestTerminationMessage(t *testing.T) {
	h := newHarness(t)
	pod := newPod("message")
	h.runSandbox(pod, false)
	start := func(name string, attempt uint32, script string) {
		t.Helper()
		_, err := h.rt.StartContainer(h.ctx(), &runtimev1.StartContainerRequest{
			Node: testNode, Pod: pod, Attempt: attempt,
			Container: &runtimev1.ContainerSpec{
				Name: name, Image: testImage, Command: []string{"sh", "-c", script},
				TerminationMessagePath: "/dev/custom-termination-log",
				Security:               &runtimev1.SecurityContext{RunAsUser: ptrTo(int64(1000))},
			},
		})
		if err != nil {
			t.Fatalf("start %s: %v", name, err)
		}
	}
	// The message is read when the exit is recorded, just after the exit.
	message := func(name string, attempt uint32, want string) {
		t.Helper()
		deadline := time.Now().Add(time.Minute)
		if want == "" {
			h.waitExited(pod, name, attempt)
			deadline = time.Now().Add(2 * time.Second) // and stays so
		}
		for {
			st := h.status(pod, name, attempt)
			got := st.GetMessage()
			if st.GetState() == stateExited && got == want && want != "" {
				return
			}
			if time.Now().After(deadline) {
				if got != want {
					t.Errorf("%s attempt %d: message %q, want %q", name, attempt, got, want)
				}
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	start("writes", 0, "id -u > /dev/custom-termination-log; echo done >> /dev/custom-termination-log; exit 3")
	message("writes", 0, "1000\ndone\n")
	start("writes", 1, "cat /dev/custom-termination-log; exit 1")
	message("writes", 1, "")
	if out, _ := h.logs(&runtimev1.ContainerLogsRequest{PodUid: pod.GetUid(), Container: "writes", TailLines: -1}); out != "" {
		t.Errorf("second attempt read %q from its termination file, want nothing: the file is its own", out)
	}

	start("long", 0, "i=0; while [ $i -lt 600 ]; do echo line-$i; i=$((i+1)); done > /dev/custom-termination-log")
	var want strings.Builder
	for i := range 600 {
		fmt.Fprintf(&want, "line-%d\n", i)
	}
	message("long", 0, want.String()[want.Len()-maxTerminationMessage:])
}

func ptrTo[T any](v T) *T { return &v }
