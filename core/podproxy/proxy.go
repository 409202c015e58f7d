// Package podproxy is core/podcontroller's whole-pod strategy: it runs the
// pods bound to one node whose backend runs whole pods itself
// (CAPABILITY_WHOLE_PODS: a member cluster behind a virtual node). The backend runs each pod; the agent hands it over with the
// ConfigMaps and Secrets it refers to (CreatePod), deletes it when it is
// deleted (DeletePod) and writes what the backend reports (WatchPods,
// ListPods) as the pod's status.
package podproxy

import (
	"context"
	"log/slog"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"

	"github.com/fedlet/fedlet/core/podcontroller"
	"github.com/fedlet/fedlet/core/podstatus"
	"github.com/fedlet/fedlet/core/volume"
	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

const (
	// workers bound how many pods are synced at once; each sync waits at
	// most for one backend call.
	workers = 8
	// maxRetryDelay bounds a failing pod's back-off: a member that was down
	// is tried again soon after it is back.
	maxRetryDelay = 30 * time.Second
	// nodeIPRetry is how often an unknown node address is asked for again.
	nodeIPRetry = 10 * time.Second
)

// Proxy is the strategy of a node whose backend runs whole pods.
type Proxy struct {
	ctrl    *podcontroller.Controller
	node    string
	client  kubernetes.Interface
	backend runtimev1.RuntimeClient
	status  *podstatus.Manager
	events  record.EventRecorder
	log     *slog.Logger
	state   *backendState
	// objects are the ConfigMaps and Secrets the pods refer to.
	objects *podcontroller.Objects

	mu sync.Mutex
	// handed is what was last handed over of each pod (fingerprint), so
	// that a pod the backend runs is handed over again only when that changes.
	handed map[types.UID]string
	// deleting holds the pods whose deletion the backend has accepted, with
	// its grace period, and which it still lists: the backend is listed
	// often until it no longer does.
	deleting map[types.UID]int64
	// lost holds pods the backend lost: they must never be handed over again.
	lost map[types.UID]bool
	// reported is the last status written for each pod from the backend's,
	// the base of its final status.
	reported map[types.UID]*corev1.PodStatus

	// reach is whether the backend can be observed; guarded by mu.
	reach reachability
	// tokens are the pods' service-account tokens, handed over as Secrets.
	tokens *volume.Tokens
}

// New returns the controller of a node whose backend (deps.Runtime) runs
// whole pods; Run starts it. The backend bounds its calls (the plugin
// host's client does).
func New(node string, deps podcontroller.Deps) *podcontroller.Controller {
	return podcontroller.New(podcontroller.Config{
		Node:          node,
		What:          "proxied pod",
		Workers:       workers,
		MaxRetryDelay: maxRetryDelay,
		NodeRetry:     nodeIPRetry,
	}, deps, func(ctrl *podcontroller.Controller) podcontroller.Strategy { return newProxy(ctrl) })
}

func newProxy(ctrl *podcontroller.Controller) *Proxy {
	return &Proxy{
		ctrl:     ctrl,
		node:     ctrl.Node(),
		client:   ctrl.Client(),
		backend:  ctrl.Runtime(),
		status:   ctrl.Status(),
		events:   ctrl.Events(),
		log:      ctrl.Log(),
		objects:  ctrl.Objects(),
		state:    newBackendState(),
		handed:   map[types.UID]string{},
		deleting: map[types.UID]int64{},
		lost:     map[types.UID]bool{},
		reported: map[types.UID]*corev1.PodStatus{},
		reach:    reachability{reachable: true},
		tokens:   volume.NewTokens(ctrl.Client()),
	}
}

// Run follows the backend's events until ctx ends.
func (c *Proxy) Run(ctx context.Context) { c.followEvents(ctx) }

// Deleting implements podcontroller.Strategy: a proxied pod's deletion
// needs nothing before its sync.
func (c *Proxy) Deleting(types.UID) {}

// forget drops everything known of a pod that is gone from both sides.
func (c *Proxy) forget(uid types.UID) {
	c.mu.Lock()
	delete(c.handed, uid)
	delete(c.deleting, uid)
	delete(c.lost, uid)
	delete(c.reported, uid)
	c.mu.Unlock()
	c.state.remove(uid)
	c.tokens.Forget(uid)
	c.ctrl.Forget(uid)
}

// nodeAddress is the virtual node's InternalIP as the backend reports it
// (GetNode); empty until known.
func (c *Proxy) nodeAddress(ctx context.Context) string {
	return c.ctrl.NodeInfo().Address(ctx)
}
