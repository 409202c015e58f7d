package cluster

import (
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Part is one stage of the local cluster, in start order. Start brings up
// every part up to and including Options.Until.
type Part int

// The parts of a cluster, in the order Start brings them up.
const (
	PartDatastore   Part = iota + 1 // kine (SQLite) or etcd
	PartAPIServer                   // kube-apiserver
	PartControllers                 // kube-controller-manager, kube-scheduler and the agent's RBAC
	PartRegistry                    // the OCI registry, seeded with busybox
	PartContainerd                  // containerd for the fedlet node
	PartAgent                       // fedlet agent, waited for until its Node is Ready
	// PartNetwork is kube-proxy and CoreDNS. It comes after the agent because
	// kube-proxy reads its Node's addresses when it starts (and exits when
	// they change).
	PartNetwork
)

// lastPart is the part a cluster is complete with.
const lastPart = PartNetwork

var partNames = map[Part]string{
	PartDatastore:   "datastore",
	PartAPIServer:   "apiserver",
	PartControllers: "controllers",
	PartRegistry:    "registry",
	PartContainerd:  "containerd",
	PartAgent:       "agent",
	PartNetwork:     "network",
}

func (p Part) String() string {
	if s, ok := partNames[p]; ok {
		return s
	}
	return fmt.Sprintf("Part(%d)", int(p))
}

// PartNames lists the names ParsePart accepts, in start order.
func PartNames() []string {
	var names []string
	for p := PartDatastore; p <= lastPart; p++ {
		names = append(names, p.String())
	}
	return names
}

// ParsePart reads a part's name: datastore, apiserver, controllers, registry,
// containerd, agent or network.
func ParsePart(s string) (Part, error) {
	for p, name := range partNames {
		if name == s {
			return p, nil
		}
	}
	return 0, fmt.Errorf("unknown part %q (expected one of %s)", s, strings.Join(PartNames(), ", "))
}

// Datastore is the storage behind the API server.
type Datastore string

// The datastores fedlet up can run.
const (
	DatastoreSQLite Datastore = "sqlite" // kine on SQLite: one machine, no setup
	DatastoreEtcd   Datastore = "etcd"
)

// Ports are the loopback TCP ports the cluster listens on. A zero field takes
// its value from DefaultPorts.
type Ports struct {
	APIServer         int
	Datastore         int // kine's or etcd's client port
	EtcdPeer          int
	ControllerManager int
	Scheduler         int
	Registry          int
	NodeAPI           int
	KubeProxyHealthz  int
	KubeProxyMetrics  int
	// DNS is CoreDNS's UDP and TCP port, on loopback and the host's address;
	// pods reach it through the kube-dns Service at ClusterDNS:53.
	DNS       int
	DNSHealth int // CoreDNS's /health
	DNSReady  int // CoreDNS's /ready
}

// DefaultPorts are the ports of `fedlet up`: those of a kubeadm cluster,
// 5000 for the registry and 10053–10055 for CoreDNS (53 is the host's own
// resolver's, often taken).
func DefaultPorts() Ports {
	return Ports{
		APIServer:         6443,
		Datastore:         2379,
		EtcdPeer:          2380,
		ControllerManager: 10257,
		Scheduler:         10259,
		Registry:          5000,
		NodeAPI:           10250,
		KubeProxyHealthz:  10256,
		KubeProxyMetrics:  10249,
		DNS:               10053,
		DNSHealth:         10054,
		DNSReady:          10055,
	}
}

// FreePorts picks unused ports for every field, so that a test can run a
// cluster beside another one. They lie below the kernel's ephemeral range,
// from which outgoing connections take their local ports: a cluster
// restarted on the same ports would otherwise find one taken by a
// connection made while it was down.
func FreePorts() (Ports, error) {
	var p Ports
	fields := []*int{&p.APIServer, &p.Datastore, &p.EtcdPeer, &p.ControllerManager, &p.Scheduler, &p.Registry, &p.NodeAPI,
		&p.KubeProxyHealthz, &p.KubeProxyMetrics, &p.DNS, &p.DNSHealth, &p.DNSReady}
	// Hold every port until all are chosen so no port is picked twice.
	var held []io.Closer
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	low, high := freePortRange()
	for _, f := range fields {
		for try := 0; *f == 0; try++ {
			if try == 100 {
				return Ports{}, fmt.Errorf("pick a free port: none free in 100 tries in %d–%d", low, high)
			}
			port := low + rand.IntN(high-low)
			// CoreDNS takes its port for UDP and TCP.
			if l, ok := holdPort(port, f == &p.DNS); ok {
				held = append(held, l...)
				*f = port
			}
		}
	}
	return p, nil
}

// freePortRange is where FreePorts picks: from 10000 up to the start of the
// ephemeral range (ip_local_port_range; 32768 when it cannot be read).
func freePortRange() (low, high int) {
	low, high = 10000, 32768
	data, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return low, high
	}
	var first int
	if _, err := fmt.Sscan(string(data), &first); err == nil && first > low+1000 {
		high = first
	}
	return low, high
}

// holdPort binds the port on every address, for TCP and, with udp, for UDP
// too, as the cluster's listeners will; ok is false when it is taken.
func holdPort(port int, udp bool) (held []io.Closer, ok bool) {
	addr := fmt.Sprintf(":%d", port)
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, false
	}
	held = append(held, l)
	if udp {
		c, err := net.ListenPacket("udp", addr)
		if err != nil {
			l.Close()
			return nil, false
		}
		held = append(held, c)
	}
	return held, true
}

func (p Ports) withDefaults() Ports {
	d := DefaultPorts()
	for _, pair := range [][2]*int{
		{&p.APIServer, &d.APIServer}, {&p.Datastore, &d.Datastore}, {&p.EtcdPeer, &d.EtcdPeer},
		{&p.ControllerManager, &d.ControllerManager}, {&p.Scheduler, &d.Scheduler},
		{&p.Registry, &d.Registry}, {&p.NodeAPI, &d.NodeAPI},
		{&p.KubeProxyHealthz, &d.KubeProxyHealthz}, {&p.KubeProxyMetrics, &d.KubeProxyMetrics},
		{&p.DNS, &d.DNS}, {&p.DNSHealth, &d.DNSHealth}, {&p.DNSReady, &d.DNSReady},
	} {
		if *pair[0] == 0 {
			*pair[0] = *pair[1]
		}
	}
	return p
}

// Options say where a cluster lives and how much of it to start.
type Options struct {
	// DataDir holds everything the cluster writes: certificates, the
	// datastore, the registry, containerd's root, logs. Required.
	DataDir string
	// BinDir holds the components (kube-apiserver, kine, containerd, ...).
	// Required.
	BinDir string
	// FedletBinary is the fedlet executable that runs the agent; defaults to
	// BinDir/fedlet.
	FedletBinary string
	// Datastore defaults to DatastoreSQLite.
	Datastore Datastore
	Ports     Ports
	// Until is the last part to start; zero means all of them (PartNetwork).
	Until Part
	// BuildMissing runs `make` in the fedlet source tree (when it can be
	// found) for components missing from BinDir, instead of failing.
	BuildMissing bool
	// NodeName is the name of the fedlet node; defaults to "fedlet-node".
	NodeName string
	// NodeReadyTimeout bounds the wait for the node to become Ready;
	// defaults to 2 minutes.
	NodeReadyTimeout time.Duration
	// PodNetwork is the cluster's pod address range and bridge on this
	// machine; zero fields take the values of DefaultPodNetwork.
	PodNetwork PodNetwork
	// Members is how many member clusters to start, before this one, each
	// behind a virtual node of this cluster's agent: member-1 … member-N,
	// under DataDir/members/NAME (see members.go). It needs Until to
	// include the agent.
	Members int
	// Progress receives one line per step, for people; nil discards them.
	Progress io.Writer
	// Logger receives warnings (a failed cleanup step); nil means slog.Default().
	Logger *slog.Logger
}

func (o Options) withDefaults() (Options, error) {
	if o.DataDir == "" {
		return o, fmt.Errorf("no data directory given")
	}
	if o.BinDir == "" {
		return o, fmt.Errorf("no bin directory given")
	}
	var err error
	if o.DataDir, err = filepath.Abs(o.DataDir); err != nil {
		return o, fmt.Errorf("data directory: %w", err)
	}
	if o.BinDir, err = filepath.Abs(o.BinDir); err != nil {
		return o, fmt.Errorf("bin directory: %w", err)
	}
	if o.FedletBinary == "" {
		o.FedletBinary = filepath.Join(o.BinDir, "fedlet")
	}
	switch o.Datastore {
	case "":
		o.Datastore = DatastoreSQLite
	case DatastoreSQLite, DatastoreEtcd:
	default:
		return o, fmt.Errorf("unknown datastore %q (expected sqlite or etcd)", o.Datastore)
	}
	if o.Until == 0 {
		o.Until = lastPart
	}
	if o.Until < PartDatastore || o.Until > lastPart {
		return o, fmt.Errorf("unknown part %v", o.Until)
	}
	o.Ports = o.Ports.withDefaults()
	if o.NodeName == "" {
		o.NodeName = "fedlet-node"
	}
	if o.NodeReadyTimeout == 0 {
		o.NodeReadyTimeout = 2 * time.Minute
	}
	if o.PodNetwork, err = o.PodNetwork.withDefaults(); err != nil {
		return o, err
	}
	if o.Members < 0 {
		return o, fmt.Errorf("members: %d is negative", o.Members)
	}
	if o.Members > 0 && o.Until < PartAgent {
		return o, fmt.Errorf("member clusters need the agent, which serves their virtual nodes: start up to %v or %v", PartAgent, PartNetwork)
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o, nil
}

// DefaultDataDir is $HOME/.local/share/fedlet.
func DefaultDataDir() (string, error) {
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("find the home directory for the default data directory: %w", err)
	}
	return filepath.Join(home, ".local", "share", "fedlet"), nil
}

// Paths are the files and directories of a cluster under its data directory.
type Paths struct {
	DataDir string
	// PKI holds the CA, every certificate and key, and the internal kubeconfigs.
	PKI string
	// Logs holds one <component>.log per child process.
	Logs string
	// Kubeconfig is the admin kubeconfig given to the user.
	Kubeconfig string
	// Ready exists, holding the kubeconfig's path, while the cluster is up.
	Ready       string
	AgentConfig string
	Kine        string // kine's working directory; its SQLite file is db/state.db there
	Etcd        string
	Registry    string // the registry's storage
	Containerd  string // containerd's root, state, config and socket
	// ContainerdSocket is containerd's gRPC address.
	ContainerdSocket string
	// RuntimeState is the containerd runtime plugin's state directory.
	RuntimeState string
	// KubeProxyConfig is kube-proxy's KubeProxyConfiguration.
	KubeProxyConfig string
	// Corefile is CoreDNS's configuration.
	Corefile string
	// Members holds one data directory per member cluster, by its name.
	Members string
	lock    string
}

// PathsFor lays out a cluster's files under dataDir.
func PathsFor(dataDir string) Paths {
	j := func(p ...string) string { return filepath.Join(append([]string{dataDir}, p...)...) }
	return Paths{
		DataDir:          dataDir,
		PKI:              j("pki"),
		Logs:             j("logs"),
		Kubeconfig:       j("kubeconfig"),
		Ready:            j("ready"),
		AgentConfig:      j("agent.yaml"),
		Kine:             j("kine"),
		Etcd:             j("etcd"),
		Registry:         j("registry"),
		Containerd:       j("containerd"),
		ContainerdSocket: j("containerd", "containerd.sock"),
		RuntimeState:     j("fedlet", "containerd"),
		KubeProxyConfig:  j("kube-proxy.yaml"),
		Corefile:         j("Corefile"),
		Members:          j("members"),
		lock:             j("lock"),
	}
}

// Log is the log file of the child process called name.
func (p Paths) Log(name string) string { return filepath.Join(p.Logs, name+".log") }
