// Package agent wires the agent together: the config, the plugin host, a
// node controller and a pod controller for each configured node, the
// status writer and the node API.
package agent

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/record"

	"github.com/fedlet/fedlet/core/config"
	"github.com/fedlet/fedlet/core/nodeapi"
	"github.com/fedlet/fedlet/core/podcontroller"
	"github.com/fedlet/fedlet/core/podstatus"
	"github.com/fedlet/fedlet/plugins/pluginhost"
	"github.com/fedlet/fedlet/plugins/version"
)

// Client rate limits: high enough that a hundred pods starting at once do
// not queue behind client-go's default of 5 requests per second; the API
// server's own priority and fairness is the limit that matters.
const (
	clientQPS     = 500
	clientBurst   = 1000
	statusWorkers = 16
)

// eventCacheSize is how many recent events the event correlator keeps to
// count repeats (client-go's default is 4096): a repeat within the last
// thousand events is still counted, not sent again.
const eventCacheSize = 1024

// Run runs the agent described by cfg until ctx ends.
func Run(ctx context.Context, cfg *config.Agent, log *slog.Logger) error {
	client, err := newClient(cfg.Kubeconfig)
	if err != nil {
		return err
	}
	host, err := pluginhost.New(pluginhost.Config{Dirs: cfg.Plugins.Dirs, Checksums: cfg.Plugins.Checksums}, log)
	if err != nil {
		return fmt.Errorf("plugin host: %w", err)
	}
	if err := checkPluginConfigs(ctx, host, cfg, log); err != nil {
		return err
	}
	_, portText, _ := net.SplitHostPort(cfg.NodeAPI.Address)
	port, _ := strconv.Atoi(portText) // validated with the config

	broadcaster := record.NewBroadcaster(record.WithContext(ctx), record.WithCorrelatorOptions(record.CorrelatorOptions{LRUCacheSize: eventCacheSize}))
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")})
	defer broadcaster.Shutdown()

	statuses := podstatus.New(client, log)
	registry := &nodeRegistry{}
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { statuses.Run(ctx, statusWorkers) })
	// One informer of each cluster-wide kind for all nodes (N nodes would
	// keep N copies of every Service otherwise).
	cluster := podcontroller.ClusterInformers(client)
	cluster.Start(ctx.Done())
	defer cluster.Shutdown()

	networks := map[string]*networkProcess{}
	for _, nc := range cfg.Networks {
		if !anyNode(cfg.Nodes, func(n config.Node) bool { return n.Network == nc.Name }) {
			log.Warn("network serves no node; not started", "plugin", nc.Name)
			continue
		}
		names := networkNodes(cfg, nc.Name)
		p := &networkProcess{
			spec:    pluginhost.NetworkSpec{Name: nc.Name, Plugin: nc.Plugin, Config: nc.Config, Nodes: names, CallTimeout: nc.Timeout()},
			log:     log.With("plugin", nc.Name),
			started: make(chan struct{}),
		}
		networks[nc.Name] = p
		wg.Go(func() { p.run(ctx, host) })
	}

	for _, rc := range cfg.Runtimes {
		var nodes []config.Node
		for _, n := range cfg.Nodes {
			if n.Runtime == rc.Name {
				nodes = append(nodes, n)
			}
		}
		var memberSecrets *config.Members
		if cfg.Members != nil && cfg.Members.Runtime == rc.Name {
			memberSecrets = cfg.Members
		}
		if len(nodes) == 0 && memberSecrets == nil {
			log.Warn("runtime serves no node; not started", "plugin", rc.Name)
			continue
		}
		r := &runtimeNodes{
			spec:          pluginhost.RuntimeSpec{Name: rc.Name, Plugin: rc.Plugin, Config: rc.Config, Nodes: nodeNames(nodes), CallTimeout: rc.Timeout()},
			nodes:         nodes,
			memberSecrets: memberSecrets,
			nodeAPIPort:   int32(port),
			agentAddress:  advertiseAddress(cfg.NodeAPI),
			client:        client,
			cluster:       cluster,
			statuses:      statuses,
			recorder: func(node string) record.EventRecorder {
				return broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "fedlet", Host: node})
			},
			registry:  registry,
			log:       log.With("plugin", rc.Name),
			dns:       dnsSettings{servers: cfg.ClusterDNS, domain: cfg.ClusterDomain},
			volumeDir: filepath.Join(cfg.StateDir, "pods"),
			networks:  networks,
		}
		wg.Go(func() { r.run(ctx, host) })
	}

	authn, authz, err := nodeapi.DelegatedAuth(client, cfg.NodeAPI.ClientCAFile)
	if err != nil {
		return fmt.Errorf("node API authentication: %w", err)
	}
	server, err := nodeapi.New(nodeapi.Config{
		Address:      cfg.NodeAPI.Address,
		CertFile:     cfg.NodeAPI.TLSCertFile,
		KeyFile:      cfg.NodeAPI.TLSKeyFile,
		ClientCAFile: cfg.NodeAPI.ClientCAFile,
	}, registry, authn, authz, log)
	if err != nil {
		return fmt.Errorf("node API: %w", err)
	}
	log.Info("agent started", "version", version.Version, "nodes", len(cfg.Nodes), "node_api", cfg.NodeAPI.Address)
	return server.Run(ctx)
}

func newClient(kubeconfig string) (kubernetes.Interface, error) {
	rest, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig %s: %w", kubeconfig, err)
	}
	rest.QPS, rest.Burst = clientQPS, clientBurst
	rest.UserAgent = "fedlet/" + version.Version
	client, err := kubernetes.NewForConfig(rest)
	if err != nil {
		return nil, fmt.Errorf("client for %s: %w", rest.Host, err)
	}
	return client, nil
}

func nodeNames(nodes []config.Node) []string {
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = n.Name
	}
	return out
}

func anyNode(nodes []config.Node, match func(config.Node) bool) bool {
	for _, n := range nodes {
		if match(n) {
			return true
		}
	}
	return false
}

// advertiseAddress is where the API server reaches the node API: the
// configured one, the listening address if specific, or this machine's
// first non-loopback IPv4 address.
func advertiseAddress(api config.NodeAPI) string {
	if api.AdvertiseAddress != "" {
		return api.AdvertiseAddress
	}
	if host, _, err := net.SplitHostPort(api.Address); err == nil {
		if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() {
			return host
		}
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return ""
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLoopback() && ipn.IP.To4() != nil {
			return ipn.IP.String()
		}
	}
	return ""
}
