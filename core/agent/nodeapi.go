package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"

	"github.com/fedlet/fedlet/core/nodeapi"
	"github.com/fedlet/fedlet/core/streams"
	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// nodeRegistry finds, for the node API, which node runs a pod and the
// runtime that holds its logs.
type nodeRegistry struct {
	mu    sync.RWMutex
	nodes []registeredNode
}

type registeredNode struct {
	name    string
	pods    podFinder
	runtime runtimev1.RuntimeClient
}

// podFinder finds a pod of one node by name: the pod controllers of both
// kinds (core/pod and core/podproxy) are.
type podFinder interface {
	PodByName(namespace, name string) (*corev1.Pod, bool)
}

func (r *nodeRegistry) add(name string, pods podFinder, runtime runtimev1.RuntimeClient) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.nodes = append(r.nodes, registeredNode{name: name, pods: pods, runtime: runtime})
}

func (r *nodeRegistry) remove(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.nodes = slices.DeleteFunc(r.nodes, func(n registeredNode) bool { return n.name == name })
}

func (r *nodeRegistry) find(namespace, name string) (registeredNode, string, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, n := range r.nodes {
		if p, ok := n.pods.PodByName(namespace, name); ok {
			return n, string(p.UID), true
		}
	}
	return registeredNode{}, "", false
}

// NodeOf implements nodeapi.Pods.
func (r *nodeRegistry) NodeOf(namespace, name string) (string, bool) {
	n, _, ok := r.find(namespace, name)
	return n.name, ok
}

// ContainerLogs implements nodeapi.Pods by streaming the plugin's log chunks.
func (r *nodeRegistry) ContainerLogs(ctx context.Context, namespace, name string, opts nodeapi.LogOptions, w io.Writer) error {
	n, uid, ok := r.find(namespace, name)
	if !ok {
		return fmt.Errorf("pod %s/%s on this agent: %w", namespace, name, nodeapi.ErrNotFound)
	}
	req := &runtimev1.ContainerLogsRequest{
		Node: n.name, PodUid: uid, Container: opts.Container,
		Follow: opts.Follow, Timestamps: opts.Timestamps, Previous: opts.Previous, TailLines: -1,
	}
	if opts.TailLines != nil {
		req.TailLines = *opts.TailLines
	}
	if opts.LimitBytes != nil {
		req.LimitBytes = *opts.LimitBytes
	}
	switch {
	case opts.SinceTime != nil:
		req.SinceUnixNano = opts.SinceTime.UnixNano()
	case opts.SinceSeconds != nil:
		req.SinceUnixNano = nowMinusSeconds(*opts.SinceSeconds)
	}
	err := streams.Logs(ctx, n.runtime, req, w)
	if err == nil || errors.Is(err, streams.ErrOutputClosed) {
		return err
	}
	return logsError(namespace, name, opts.Container, err)
}

func logsError(namespace, name, container string, err error) error {
	if status.Code(err) == codes.NotFound {
		return fmt.Errorf("container %s of pod %s/%s: %s: %w", container, namespace, name, status.Convert(err).Message(), nodeapi.ErrNotFound)
	}
	return fmt.Errorf("logs of container %s of pod %s/%s: %w", container, namespace, name, err)
}

func nowMinusSeconds(s int64) int64 {
	return time.Now().Add(-time.Duration(s) * time.Second).UnixNano()
}
