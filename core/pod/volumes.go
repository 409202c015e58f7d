package pod

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"

	"github.com/fedlet/fedlet/core/podcontroller"
	"github.com/fedlet/fedlet/core/volume"
	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// reasonFailedMount is the kubelet's event reason of a volume it cannot make.
const reasonFailedMount = "FailedMount"

// podVolumes are the pods' node-local volumes, a directory per pod under
// root: the files of Secrets, ConfigMaps, the downward API and
// service-account tokens, and emptyDirs.
type podVolumes struct {
	root     string // empty for a node that makes none
	tokens   *volume.Tokens
	objects  *podcontroller.Objects
	nodeInfo *podcontroller.NodeInfo
	waiting  *waitReasons
	events   record.EventRecorder
	log      *slog.Logger
}

// enabled says whether the node makes volumes.
func (c *podVolumes) enabled() bool { return c.root != "" }

// podDir is where the pod's volumes are made on the node.
func (c *podVolumes) podDir(uid types.UID) string {
	return filepath.Join(c.root, string(uid))
}

func (c *podVolumes) dir(uid types.UID, name string) string {
	return filepath.Join(c.podDir(uid), "volumes", name)
}

// make makes (or brings up to date) the pod's volumes on the node
// and returns how soon one needs a refresh (a token), 0 for never. A
// volume waiting for an object makes the pod's containers wait, with a
// FailedMount event.
func (c *podVolumes) make(ctx context.Context, pod *corev1.Pod) (time.Duration, error) {
	var refresh time.Time
	for _, v := range pod.Spec.Volumes {
		payload, at, err := volume.Build(ctx, pod, v, c.objects, c.tokens, c.nodeInfo.Allocatable(ctx))
		if err == nil {
			dir := c.dir(pod.UID, v.Name)
			if v.EmptyDir != nil {
				err = volume.MakeEmptyDir(dir, fsGroup(pod))
			} else {
				err = volume.Write(dir, payload, fsGroup(pod))
			}
		}
		var missing *volume.MissingError
		if errors.As(err, &missing) {
			c.events.Event(pod, corev1.EventTypeWarning, reasonFailedMount, missing.Error())
			for _, ctr := range allContainers(pod) {
				c.waiting.set(pod.UID, ctr.Name, &waitReason{"ContainerCreating", missing.Error()})
			}
			return 0, errVolumeWaits
		}
		if err != nil {
			return 0, err
		}
		if !at.IsZero() && (refresh.IsZero() || at.Before(refresh)) {
			refresh = at
		}
	}
	if refresh.IsZero() {
		return 0, nil
	}
	return max(time.Until(refresh), time.Second), nil
}

// fsGroup is the group the pod's volumes belong to, nil for none.
func fsGroup(pod *corev1.Pod) *int64 {
	if sc := pod.Spec.SecurityContext; sc != nil {
		return sc.FSGroup
	}
	return nil
}

// errVolumeWaits: a volume waits for an object; its watch re-queues the pod.
var errVolumeWaits = errors.New("a volume waits for an object")

// remove removes what make made for the pod.
func (c *podVolumes) remove(uid types.UID) {
	if c.root == "" {
		return
	}
	if err := os.RemoveAll(c.podDir(uid)); err != nil {
		c.log.Warn("remove the pod's volumes", "uid", uid, "err", err)
	}
	c.tokens.Forget(uid)
}

// mounts are the container's volume mounts, on the directories make made.
func (c *podVolumes) mounts(pod *corev1.Pod, ctr *corev1.Container) ([]*runtimev1.Mount, error) {
	byName := map[string]corev1.Volume{}
	for _, v := range pod.Spec.Volumes {
		byName[v.Name] = v
	}
	var out []*runtimev1.Mount
	for _, vm := range ctr.VolumeMounts {
		v, ok := byName[vm.Name]
		if !ok {
			return nil, fmt.Errorf("volumeMount %q: the pod has no such volume", vm.Name)
		}
		host := c.dir(pod.UID, vm.Name)
		if vm.SubPath != "" {
			if filepath.IsAbs(vm.SubPath) || strings.Contains("/"+vm.SubPath+"/", "/../") {
				return nil, fmt.Errorf("volumeMount %q: subPath %q must be relative and stay in the volume", vm.Name, vm.SubPath)
			}
			host = filepath.Join(host, vm.SubPath)
			if v.EmptyDir != nil {
				if err := volume.MakeEmptyDir(host, fsGroup(pod)); err != nil {
					return nil, fmt.Errorf("volumeMount %q: %w", vm.Name, err)
				}
			}
		}
		out = append(out, &runtimev1.Mount{HostPath: host, ContainerPath: vm.MountPath, ReadOnly: vm.ReadOnly || volume.ReadOnly(v)})
	}
	return out, nil
}
