// Package node registers a Node in the API server and keeps its status and
// Lease current, as the kubelet does for the machine it runs on.
package node

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/component-helpers/apimachinery/lease"
	"k8s.io/utils/clock"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// The kubelet's defaults: the Lease is the heartbeat, the status is written
// when it changes and at least every statusReportPeriod.
const (
	leaseDurationSeconds = 40
	leaseRenewInterval   = 10 * time.Second
	statusCheckPeriod    = 10 * time.Second
	statusReportPeriod   = time.Minute
)

// Backend is the runtime plugin behind the node.
type Backend interface {
	Client() runtimev1.RuntimeClient
	// State says whether the plugin process is up, and why not.
	State() (up bool, reason, message string)
}

// NetworkReporter is implemented by a Backend whose nodes' pods a network
// plugin attaches: the node is Ready only while that network is.
type NetworkReporter interface {
	// NetworkState says whether the node has a network plugin
	// (configured), and whether it can attach pods now, and why not.
	NetworkState(ctx context.Context, node string) (configured, ready bool, reason, message string)
}

// Config describes the Node to register.
type Config struct {
	Name        string
	Labels      map[string]string
	Taints      []corev1.Taint
	NodeAPIPort int32
	// AgentVersion goes into nodeInfo.kubeletVersion.
	AgentVersion string
	// AgentAddress is the node's InternalIP when the backend reports no
	// address (a virtual node): where the API server reaches the node API.
	AgentAddress string
	// ReadyObserved, if set, is given the Ready condition of every
	// observation: a controller of whole pods marks them while the backend
	// cannot be observed.
	ReadyObserved func(ready corev1.NodeCondition)
}

// Controller owns one Node object.
type Controller struct {
	cfg     Config
	client  kubernetes.Interface
	backend Backend
	log     *slog.Logger

	// wake asks for a status update now (the plugin went down or came back).
	wake chan struct{}
}

// New returns a controller for the node described by cfg.
func New(cfg Config, client kubernetes.Interface, backend Backend, log *slog.Logger) *Controller {
	return &Controller{
		cfg:     cfg,
		client:  client,
		backend: backend,
		log:     log.With("node", cfg.Name),
		wake:    make(chan struct{}, 1),
	}
}

// Poke makes the controller check the backend and report the node's status now.
func (c *Controller) Poke() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// Run registers the node, then keeps its status and lease until ctx ends.
func (c *Controller) Run(ctx context.Context) {
	if err := c.register(ctx); err != nil {
		return // ctx ended
	}
	leases := lease.NewController(clock.RealClock{}, c.client, c.cfg.Name, leaseDurationSeconds,
		nil, leaseRenewInterval, c.cfg.Name, corev1.NamespaceNodeLease, c.ownLease)
	go leases.Run(ctx)

	var lastReport time.Time
	var last *corev1.NodeStatus
	ticker := time.NewTicker(statusCheckPeriod)
	defer ticker.Stop()
	for {
		status := c.observe(ctx)
		if c.cfg.ReadyObserved != nil {
			c.cfg.ReadyObserved(status.Conditions[0])
		}
		if last == nil || statusChanged(last, status) || time.Since(lastReport) >= statusReportPeriod {
			if err := c.writeStatus(ctx, status); err != nil {
				c.log.Error("update node status", "err", err)
			} else {
				last, lastReport = status, time.Now()
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		case <-c.wake:
		}
	}
}

// register creates the Node, or takes over the one that exists, retrying until ctx ends.
func (c *Controller) register(ctx context.Context) error {
	return wait.PollUntilContextCancel(ctx, time.Second, true, func(ctx context.Context) (bool, error) {
		err := c.createOrAdopt(ctx)
		if err != nil {
			c.log.Error("register node", "err", err)
		}
		return err == nil, nil
	})
}

func (c *Controller) createOrAdopt(ctx context.Context) error {
	nodes := c.client.CoreV1().Nodes()
	want := c.desiredNode()
	existing, err := nodes.Get(ctx, c.cfg.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		if _, err := nodes.Create(ctx, want, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create node %s: %w", c.cfg.Name, err)
		}
		c.log.Info("node registered")
		return nil
	}
	if err != nil {
		return fmt.Errorf("get node %s: %w", c.cfg.Name, err)
	}
	// Labels and taints come from the config; others' labels and taints stay.
	for k, v := range want.Labels {
		if existing.Labels == nil {
			existing.Labels = map[string]string{}
		}
		existing.Labels[k] = v
	}
	existing.Spec.Taints = mergeTaints(existing.Spec.Taints, want.Spec.Taints)
	if _, err := nodes.Update(ctx, existing, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("update node %s: %w", c.cfg.Name, err)
	}
	c.log.Info("node adopted")
	return nil
}

func (c *Controller) desiredNode() *corev1.Node {
	labels := map[string]string{
		corev1.LabelHostname:   c.cfg.Name,
		corev1.LabelOSStable:   "linux",
		"fedlet.io/node-agent": "fedlet",
	}
	for k, v := range c.cfg.Labels {
		labels[k] = v
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: c.cfg.Name, Labels: labels},
		Spec:       corev1.NodeSpec{Taints: c.cfg.Taints},
	}
}

// ownLease makes the Node own its Lease, so the Lease goes when the Node does.
func (c *Controller) ownLease(l *coordinationv1.Lease) error {
	node, err := c.client.CoreV1().Nodes().Get(context.TODO(), c.cfg.Name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("get node %s for its lease: %w", c.cfg.Name, err)
	}
	l.OwnerReferences = []metav1.OwnerReference{{
		APIVersion: "v1", Kind: "Node", Name: node.Name, UID: node.UID,
	}}
	return nil
}

func mergeTaints(existing, want []corev1.Taint) []corev1.Taint {
	out := append([]corev1.Taint(nil), want...)
	for _, t := range existing {
		found := false
		for _, w := range want {
			if w.Key == t.Key && w.Effect == t.Effect {
				found = true
			}
		}
		if !found {
			out = append(out, t)
		}
	}
	return out
}
