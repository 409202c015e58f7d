package containerd

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"strconv"
	"time"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
	"github.com/fedlet/fedlet/plugins/sdk"
)

// Labels on every containerd object the plugin makes. They are the plugin's
// only state: a restarted plugin finds everything again through them.
const (
	LabelNode         = "fedlet.io/node"
	LabelPodUID       = "fedlet.io/pod-uid"
	LabelPodNamespace = "fedlet.io/pod-namespace"
	LabelPodName      = "fedlet.io/pod-name"
	LabelContainer    = "fedlet.io/container"
	LabelAttempt      = "fedlet.io/attempt"
	LabelKind         = "fedlet.io/kind"

	KindSandbox   = "sandbox"
	KindContainer = "container"
)

// Labels of a sandbox record.
const (
	labelNetns       = "fedlet.io/netns"
	labelHostNetwork = "fedlet.io/host-network"
	labelHostname    = "fedlet.io/hostname"
	labelResolvConf  = "fedlet.io/resolv-conf" // set when the agent gave the pod's DNS config
)

// Labels of a container: what it runs, and what became of it, kept on the
// container so that they outlive its task.
const (
	labelImage      = "fedlet.io/image"
	labelImageRef   = "fedlet.io/image-ref"
	labelTTY        = "fedlet.io/tty"
	labelStdin      = "fedlet.io/stdin" // "once" for stdinOnce, "true", or absent
	labelStartedAt  = "fedlet.io/started-at"
	labelFinishedAt = "fedlet.io/finished-at"
	labelExitCode   = "fedlet.io/exit-code"
	labelReason     = "fedlet.io/reason"
	labelMessage    = "fedlet.io/message"
	labelOOMKilled  = "fedlet.io/oom-killed"
)

// sandboxID is the containerd ID of a pod's sandbox record.
func sandboxID(podUID string) string {
	return hashID("sandbox", podUID)
}

// containerID is the containerd ID of one attempt of a container. It is a
// function of its identity so that a repeated StartContainer finds the
// attempt it started before.
func containerID(podUID, name string, attempt uint32) string {
	return hashID("container", podUID, name, strconv.FormatUint(uint64(attempt), 10))
}

// hashID fits any identity into containerd's 76-character ID limit.
func hashID(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// netnsName is the name under /run/netns of a pod's network namespace.
func netnsName(podUID string) string {
	return "fedlet-" + podUID
}

// safeName is what pod UIDs and container names must look like: they name
// files and network namespaces.
var safeName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)

func validateName(field, v string) error {
	if !safeName.MatchString(v) {
		return sdk.InvalidArgument(field, fmt.Sprintf("%q must be letters, digits, '-', '_' or '.', starting with a letter or digit", v))
	}
	return nil
}

func podLabels(node string, pod *runtimev1.PodRef, kind string) map[string]string {
	return map[string]string{
		LabelNode:         node,
		LabelPodUID:       pod.GetUid(),
		LabelPodNamespace: pod.GetNamespace(),
		LabelPodName:      pod.GetName(),
		LabelKind:         kind,
	}
}

func podRefFromLabels(l map[string]string) *runtimev1.PodRef {
	return &runtimev1.PodRef{Uid: l[LabelPodUID], Namespace: l[LabelPodNamespace], Name: l[LabelPodName]}
}

func formatTime(t time.Time) string {
	return strconv.FormatInt(t.UnixNano(), 10)
}

// labelTime reads a time written by formatTime; zero if absent.
func labelTime(l map[string]string, key string) int64 {
	n, _ := strconv.ParseInt(l[key], 10, 64)
	return n
}

func labelAttempt(l map[string]string) uint32 {
	n, _ := strconv.ParseUint(l[LabelAttempt], 10, 32)
	return uint32(n)
}

// truncateLabel keeps a label value under containerd's 4 KiB limit.
func truncateLabel(s string) string {
	const max = maxTerminationMessage
	if len(s) <= max {
		return s
	}
	return s[:max]
}

// labelFilter is a containerd filter matching every given label exactly.
func labelFilter(kv ...string) string {
	f := ""
	for i := 0; i+1 < len(kv); i += 2 {
		if f != "" {
			f += ","
		}
		f += fmt.Sprintf("labels.%q==%q", kv[i], kv[i+1])
	}
	return f
}
