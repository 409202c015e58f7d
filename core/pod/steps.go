// Package pod is core/podcontroller's step-by-step strategy, for a node whose
// runtime plugin runs containers: it drives each pod through the kubelet's
// sequence (sandbox, network, volumes, images, containers, probes, restarts,
// termination) and reports what the runtime observes as the pod's status.
package pod

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/flowcontrol"

	"github.com/fedlet/fedlet/core/podcontroller"
	"github.com/fedlet/fedlet/core/podstatus"
	"github.com/fedlet/fedlet/core/probe"
	"github.com/fedlet/fedlet/core/volume"
	networkv1 "github.com/fedlet/fedlet/plugins/proto/network/v1"
	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

const (
	// workers bound how many pods are synced at once.
	workers = 16
	// maxRetryDelay bounds a failing pod's back-off, as the kubelet's pod
	// workers: at once, then twice as late each time up to 10 s.
	maxRetryDelay = 10 * time.Second
)

// Config describes the node whose pods the controller runs.
type Config struct {
	Node string
	// ClusterDNS are the cluster's DNS servers, given to pods by their
	// dnsPolicy; none means pods get the host's resolver.
	ClusterDNS []string
	// ClusterDomain is the cluster's DNS domain, "cluster.local" if unset.
	ClusterDomain string
	// Network is the node's network plugin; nil when pods get no network
	// from the agent (a loopback only, or the runtime's own network).
	Network networkv1.NetworkClient
	// PodCIDR is the node's pod address range when its Node has none.
	PodCIDR string
	// VolumeDir is where pods' volumes are made on the node, a directory
	// per pod; empty for a node that makes none.
	VolumeDir string
}

// Steps is the strategy of a node whose runtime runs containers: it drives
// each pod through the kubelet's sequence.
type Steps struct {
	ctrl    *podcontroller.Controller
	node    string
	client  kubernetes.Interface
	runtime runtimev1.RuntimeClient
	status  *podstatus.Manager
	events  record.EventRecorder
	log     *slog.Logger

	state *runtimeState
	// objects are the ConfigMaps and Secrets the pods' environments read.
	objects *podcontroller.Objects
	// nodeInfo is the node's address and resources, learnt from the runtime.
	nodeInfo *podcontroller.NodeInfo
	// probes run the containers' liveness, readiness and startup probes.
	probes *probe.Manager

	// crashBackoff and configBackoff hold the kubelet's exponential
	// delays of restarts and of containers waiting for their configuration,
	// keyed by pod UID and container; images pulls them.
	crashBackoff  *flowcontrol.Backoff
	configBackoff *flowcontrol.Backoff
	images        *imagePuller

	// waiting says why containers have not started; messages are the
	// termination messages read from logs; statuses computes the pods'
	// statuses from both and the runtime's records.
	waiting  *waitReasons
	messages *terminationMessages
	statuses *statusGenerator

	// exec runs commands in containers, hooks runs lifecycle handlers,
	// stopper stops containers, terminations stop deleted pods.
	exec         containerExec
	hooks        *hookRunner
	stopper      *containerStopper
	terminations *terminations

	// network attaches pod sandboxes; nil without a network plugin.
	network *podNetwork
	// volumes are the pods' node-local volumes; spec builds what the
	// runtime is asked to run.
	volumes *podVolumes
	spec    *specBuilder
}

// New returns the controller of cfg.Node, whose runtime (deps.Runtime)
// runs containers; Run starts it. cluster is the agent's started factory of
// cluster-wide informers (podcontroller.ClusterInformers): containers get
// the Services' variables, so no pod is synced before they are known. The
// runtime bounds the calls that have no deadline of their own (the plugin
// host's client does); the controller bounds only a container's stop, by
// its grace period.
func New(cfg Config, deps podcontroller.Deps, cluster informers.SharedInformerFactory) *podcontroller.Controller {
	services := cluster.Core().V1().Services().Informer()
	return podcontroller.New(podcontroller.Config{
		Node:          cfg.Node,
		What:          "pod",
		Workers:       workers,
		MaxRetryDelay: maxRetryDelay,
		WaitFor:       []cache.InformerSynced{services.HasSynced},
	}, deps, func(ctrl *podcontroller.Controller) podcontroller.Strategy { return newSteps(cfg, ctrl, services) })
}

func newSteps(cfg Config, ctrl *podcontroller.Controller, services cache.SharedIndexInformer) *Steps {
	c := &Steps{
		ctrl:          ctrl,
		node:          cfg.Node,
		client:        ctrl.Client(),
		runtime:       ctrl.Runtime(),
		status:        ctrl.Status(),
		events:        ctrl.Events(),
		log:           ctrl.Log(),
		state:         newRuntimeState(),
		objects:       ctrl.Objects(),
		nodeInfo:      ctrl.NodeInfo(),
		crashBackoff:  flowcontrol.NewBackOff(10*time.Second, 5*time.Minute),
		configBackoff: flowcontrol.NewBackOff(10*time.Second, 5*time.Minute),
		waiting:       newWaitReasons(),
		messages:      newTerminationMessages(ctrl.Runtime(), cfg.Node, ctrl.Log()),
	}
	c.network = newPodNetwork(&podNetwork{
		client:         cfg.Network,
		configuredCIDR: cfg.PodCIDR,
		node:           c.node,
		kube:           c.client,
		pods:           ctrl,
		state:          c.state,
		waiting:        c.waiting,
		events:         c.events,
		log:            c.log,
	})
	c.volumes = &podVolumes{
		root:     cfg.VolumeDir,
		tokens:   volume.NewTokens(ctrl.Client()),
		objects:  c.objects,
		nodeInfo: c.nodeInfo,
		waiting:  c.waiting,
		events:   c.events,
		log:      c.log,
	}
	c.spec = &specBuilder{
		objects:         c.objects,
		serviceInformer: services,
		nodeInfo:        c.nodeInfo,
		network:         c.network,
		volumes:         c.volumes,
		clusterDNS:      cfg.ClusterDNS,
		clusterDomain:   cfg.ClusterDomain,
	}
	if c.spec.clusterDomain == "" {
		c.spec.clusterDomain = "cluster.local"
	}
	c.images = &imagePuller{
		runtime: c.runtime,
		node:    c.node,
		client:  c.client,
		waiting: c.waiting,
		events:  c.events,
		log:     c.log,
		backoff: flowcontrol.NewBackOff(10*time.Second, 5*time.Minute),
		report:  c.report,
	}
	c.exec = containerExec{runtime: c.runtime, node: c.node}
	c.hooks = &hookRunner{exec: c.exec, nodeInfo: c.nodeInfo}
	c.stopper = &containerStopper{runtime: c.runtime, node: c.node, hooks: c.hooks, state: c.state, events: c.events, log: c.log}
	c.probes = c.newProbes()
	c.statuses = &statusGenerator{nodeInfo: c.nodeInfo, network: c.network, waiting: c.waiting, messages: c.messages, probes: c.probes}
	c.terminations = &terminations{
		client:        c.client,
		stopper:       c.stopper,
		messages:      c.messages,
		statuses:      c.statuses,
		status:        c.status,
		state:         c.state,
		log:           c.log,
		removeSandbox: c.removeSandbox,
		retry:         ctrl.Retry,
		terminating:   map[types.UID]bool{},
	}
	return c
}

// Run runs the probes until ctx ends, and waits for the pods' terminations.
func (c *Steps) Run(ctx context.Context) {
	c.probes.Run(ctx)
	c.terminations.wait()
}

// Deleting implements podcontroller.Strategy: as under the kubelet, no
// probe kills a pod being deleted.
func (c *Steps) Deleting(uid types.UID) { c.probes.Stop(uid) }

// forget drops what the controller knows of a pod whose sandbox is gone. A
// terminated pod stays marked as terminating while its object exists, so
// that the syncs its last status and its deletion cause do not terminate it
// again.
func (c *Steps) forget(uid types.UID) {
	gone := c.ctrl.PodByUID(uid) == nil
	c.terminations.forget(uid, gone)
	c.waiting.forget(uid)
	c.messages.forget(uid)
	c.probes.Forget(uid)
	c.state.remove(uid)
	c.network.forget(uid)
	c.ctrl.Forget(uid)
	c.volumes.remove(uid)
}

func backoffKey(uid types.UID, container string) string {
	return fmt.Sprintf("%s/%s", uid, container)
}
