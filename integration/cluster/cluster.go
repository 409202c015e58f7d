// Package cluster brings up a whole local Kubernetes cluster on one machine:
// a datastore (kine on SQLite, or etcd), kube-apiserver, kube-controller-manager
// and kube-scheduler built from upstream, an OCI registry seeded with a
// busybox image, containerd, a fedlet agent serving one containerd node, and
// kube-proxy and CoreDNS for Services and their names. Everything lives
// under one data directory and listens on loopback only, but for CoreDNS,
// which pods reach on the host's address, and NodePorts.
// It is what `fedlet up` runs and what the integration tests start. With
// Options.Members it also starts member clusters, each behind a virtual
// node of the agent (members.go).
package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"golang.org/x/sys/unix"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Cluster is a running local cluster. Stop it with Stop.
type Cluster struct {
	opts  Options
	paths Paths
	pki   *pki
	sup   *supervisor
	lock  *os.File
	// name is the cluster's name in a federation: a member's name, or
	// HubName for every other cluster.
	name    string
	members []*Cluster // started before this cluster, stopped after it

	restConfig *rest.Config
	client     kubernetes.Interface
	image      string

	containerd *child // nil until started; its containers are removed before it stops
	agent      *child
	apiServer  *child
	etcdURL    string // where the API server finds the datastore
	kubeProxy  *child // nil until started; its iptables rules are removed after it stops
	coreDNS    *child
	proxyLock  *os.File // kubeProxyLock, held while kube-proxy may run

	stopOnce sync.Once
	stopErr  error
	// hostIP is the machine's own address: the node's InternalIP, where
	// pods and the API server reach it.
	hostIP net.IP
}

// Start brings up the parts of the cluster up to opts.Until, in order, each
// waited for until it serves. The certificates and the datastore under
// opts.DataDir are reused from an earlier run, so cluster objects survive a
// restart. If Start fails it stops whatever it started; if ctx ends while it
// waits, it fails.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	return start(ctx, opts, nil)
}

// start starts a cluster, a member cluster of a hub when hub is set.
func start(ctx context.Context, opts Options, hub *memberOf) (*Cluster, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if opts.Until >= PartContainerd && os.Geteuid() != 0 {
		return nil, fmt.Errorf("containerd and runc need root: run fedlet up as root")
	}
	began := time.Now()
	paths := PathsFor(opts.DataDir)
	if err := os.MkdirAll(paths.Logs, 0o755); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	lock, err := lockDataDir(paths)
	if err != nil {
		return nil, err
	}
	c := &Cluster{
		opts:  opts,
		paths: paths,
		lock:  lock,
		image: fmt.Sprintf("localhost:%d/busybox:latest", opts.Ports.Registry),
	}
	var failed chan error
	whose := ""
	switch {
	case hub != nil:
		c.name, failed, whose = hub.name, hub.failed, " of member cluster "+hub.name
	default:
		// Members may also be added at run time (fedlet member add).
		c.name = HubName
	}
	if err := c.prepare(ctx); err != nil {
		c.releaseLock()
		return nil, err
	}
	c.sup = newSupervisor(paths.Log, failed, whose)
	err = c.startMembers(ctx)
	if err == nil {
		err = c.bringUp(ctx)
	}
	if err != nil {
		if stopErr := c.Stop(context.Background()); stopErr != nil {
			err = fmt.Errorf("%w (and stopping what had started: %v)", err, stopErr)
		}
		return nil, err
	}
	if err := writeFile(paths.Ready, []byte(paths.Kubeconfig+"\n"), 0o644); err != nil {
		c.Stop(context.Background())
		return nil, err
	}
	c.progress("cluster up in %.1fs", time.Since(began).Seconds())
	return c, nil
}

// lockDataDir keeps a second fedlet up away from a data directory in use.
// The kernel drops the lock when the process ends, however it ends.
func lockDataDir(paths Paths) (*os.File, error) {
	f, err := os.OpenFile(paths.lock, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock data directory: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("another fedlet up is running on %s", paths.DataDir)
		}
		return nil, fmt.Errorf("lock data directory: %w", err)
	}
	return f, nil
}

func (c *Cluster) releaseLock() {
	if c.lock != nil {
		c.lock.Close()
		c.lock = nil
	}
}

// prepare makes sure the binaries, certificates and kubeconfigs are there.
func (c *Cluster) prepare(ctx context.Context) error {
	// Left by a run that was killed: the cluster is not up yet.
	os.Remove(c.paths.Ready)
	if err := ensureComponents(ctx, c.opts); err != nil {
		return err
	}
	hostIP, err := HostIP()
	if err != nil {
		return err
	}
	c.hostIP = hostIP
	p, err := ensurePKI(c.paths.PKI, clusterCerts(c.opts.NodeName, c.hostIP))
	if err != nil {
		return err
	}
	c.pki = p
	if err := p.kubeconfigs(c.paths, c.opts.Ports.APIServer); err != nil {
		return err
	}
	c.restConfig, err = clientcmd.BuildConfigFromFlags("", c.paths.Kubeconfig)
	if err != nil {
		return fmt.Errorf("load %s: %w", c.paths.Kubeconfig, err)
	}
	c.client, err = kubernetes.NewForConfig(c.restConfig)
	if err != nil {
		return fmt.Errorf("admin client: %w", err)
	}
	return nil
}

func (c *Cluster) bringUp(ctx context.Context) error {
	etcdURL, err := c.startDatastore(ctx)
	if err != nil || c.opts.Until < PartAPIServer {
		return err
	}
	c.etcdURL = etcdURL
	if err := c.startAPIServer(ctx, etcdURL); err != nil || c.opts.Until < PartControllers {
		return err
	}
	if err := c.startControllers(ctx); err != nil {
		return err
	}
	if err := applyAgentRBAC(ctx, c.client); err != nil {
		return err
	}
	c.progress("applied RBAC for group %s", AgentGroup)
	if c.opts.Until < PartRegistry {
		return nil
	}
	if err := c.startRegistry(ctx); err != nil || c.opts.Until < PartContainerd {
		return err
	}
	if err := c.startContainerd(ctx); err != nil || c.opts.Until < PartAgent {
		return err
	}
	if err := c.startAgent(ctx); err != nil || c.opts.Until < PartNetwork {
		return err
	}
	return c.startNetwork(ctx)
}

func (c *Cluster) start(name string, args []string, o startOptions) (*child, error) {
	path := o.path
	if path == "" {
		path = filepath.Join(c.opts.BinDir, name)
	}
	return c.sup.start(name, path, args, o)
}

func (c *Cluster) progress(format string, args ...any) {
	fmt.Fprintf(c.opts.Progress, format+"\n", args...)
}

// Stop stops the cluster: CoreDNS, then kube-proxy, whose iptables rules
// are then removed (`kube-proxy --cleanup`), the agent, every container,
// task and snapshot left in containerd's fedlet namespace and every mount
// under the containerd and runtime directories, then containerd, the
// registry, the controllers, the API server and the datastore, each waited
// for (SIGTERM, then SIGKILL); then its member clusters, the last started
// first. It is safe to call more than once.
func (c *Cluster) Stop(ctx context.Context) error {
	c.stopOnce.Do(func() { c.stopErr = c.stop(ctx) })
	return c.stopErr
}

// stopTimeout is how long a child gets between SIGTERM and SIGKILL.
const stopTimeout = 20 * time.Second

func (c *Cluster) stop(ctx context.Context) error {
	os.Remove(c.paths.Ready)
	var errs []error
	children := c.sup.started()
	for i := len(children) - 1; i >= 0; i-- {
		ch := children[i]
		switch ch {
		case c.containerd:
			errs = append(errs, c.stopContainerd(ctx))
			continue
		case c.kubeProxy:
			errs = append(errs, c.stopKubeProxy())
			continue
		}
		c.progress("stopping %s…", ch.name)
		errs = append(errs, ch.stop(stopTimeout))
	}
	c.sup.close()
	if c.proxyLock != nil {
		c.proxyLock.Close()
	}
	errs = append(errs, c.stopMembers(ctx))
	c.releaseLock()
	return errors.Join(errs...)
}

// stopContainerd removes what the runtime left in containerd while
// containerd can still do it, stops containerd, then unmounts and removes
// whatever is still mounted.
func (c *Cluster) stopContainerd(ctx context.Context) error {
	var errs []error
	c.progress("removing containers in containerd namespace %s…", runtimeNamespace)
	cleanCtx, cancel := context.WithTimeout(ctx, time.Minute)
	netns, err := removeRuntimeObjects(cleanCtx, c.paths.ContainerdSocket)
	cancel()
	if err != nil {
		errs = append(errs, fmt.Errorf("remove containers: %w", err))
	}
	c.progress("releasing pod networks…")
	errs = append(errs, c.releasePodNetwork(ctx))
	c.progress("stopping containerd…")
	errs = append(errs, c.containerd.stop(stopTimeout))
	// A shim whose task was just deleted may not have been told to exit
	// before containerd stopped: it would stay forever.
	errs = append(errs, killShims(c.paths.ContainerdSocket))
	for _, dir := range []string{c.paths.Containerd, c.paths.RuntimeState} {
		errs = append(errs, unmountUnder(dir))
	}
	errs = append(errs, removeNetns(netns))
	return errors.Join(errs...)
}

// Failed delivers the first child process that exits while the cluster is
// running, as an *ExitError. The cluster is then broken: Stop it.
func (c *Cluster) Failed() <-chan error { return c.sup.failed }

// Kubeconfig is the path of the admin kubeconfig (DIR/kubeconfig).
func (c *Cluster) Kubeconfig() string { return c.paths.Kubeconfig }

// RESTConfig is a copy of the admin client configuration.
func (c *Cluster) RESTConfig() *rest.Config { return rest.CopyConfig(c.restConfig) }

// Client is a clientset authenticated as the admin (system:masters).
func (c *Cluster) Client() kubernetes.Interface { return c.client }

// Image is the reference of the busybox image in the cluster's registry,
// e.g. "localhost:5000/busybox:latest".
func (c *Cluster) Image() string { return c.image }

// Kubectl is the path of the kubectl built at the server's version.
func (c *Cluster) Kubectl() string { return filepath.Join(c.opts.BinDir, "kubectl") }

// Paths are the cluster's files and directories.
func (c *Cluster) Paths() Paths { return c.paths }

// NodeName is the name of the fedlet node.
func (c *Cluster) NodeName() string { return c.opts.NodeName }

// Name is the cluster's name in a federation: a member's own name
// (member-1, ...), or HubName for every other cluster, which may be given
// members at run time.
func (c *Cluster) Name() string { return c.name }

// Members are the member clusters, in start order: member-1 first.
func (c *Cluster) Members() []*Cluster { return slices.Clone(c.members) }

// PodNetwork is the cluster's pod network on this machine.
func (c *Cluster) PodNetwork() PodNetwork { return c.opts.PodNetwork }
