package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// kubeProxyConfig is kube-proxy's configuration: iptables mode, NodePorts
// on the host's address only, health and metrics on loopback, and no
// change to the machine's sysctls (conntrack's limits and timeouts, and
// route_localnet, which NodePorts on 127.0.0.1 would need), so that the
// machine is left as it was found.
func kubeProxyConfig(kubeconfig, nodeName, clusterCIDR string, hostIP net.IP, p Ports) string {
	return fmt.Sprintf(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: %q
hostnameOverride: %q
# The node's primary address, whatever address the Node advertises.
bindAddress: %q
healthzBindAddress: "127.0.0.1:%d"
metricsBindAddress: "127.0.0.1:%d"
mode: iptables
detectLocalMode: ClusterCIDR
clusterCIDR: %q
nodePortAddresses: ["primary"]
iptables:
  localhostNodePorts: false
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
# Its default, -999, needs a privilege these machines do not grant.
oomScoreAdj: 0
`, kubeconfig, nodeName, hostIP.String(), p.KubeProxyHealthz, p.KubeProxyMetrics, clusterCIDR)
}

// kubeProxyLock is held while a cluster's kube-proxy runs: the iptables
// chains are the machine's, one kube-proxy may own them at a time, and the
// cleanup of one cluster would remove another's rules.
const kubeProxyLock = "/run/fedlet-kube-proxy.lock"

// startKubeProxy runs kube-proxy as the node's proxy and waits for its
// /healthz, which answers once the rules are written.
func (c *Cluster) startKubeProxy(ctx context.Context, hostIP net.IP) error {
	if err := c.lockKubeProxy(); err != nil {
		return err
	}
	if err := writeFile(c.paths.KubeProxyConfig, []byte(kubeProxyConfig(c.pki.kubeconfig("kube-proxy"), c.opts.NodeName, c.opts.PodNetwork.CIDR, hostIP, c.opts.Ports)), 0o644); err != nil {
		return err
	}
	c.progress("starting kube-proxy (iptables) for node %s…", c.opts.NodeName)
	ch, err := c.start("kube-proxy", []string{"--config=" + c.paths.KubeProxyConfig}, startOptions{dir: c.paths.DataDir})
	if err != nil {
		return err
	}
	c.kubeProxy = ch
	url := fmt.Sprintf("http://127.0.0.1:%d/healthz", c.opts.Ports.KubeProxyHealthz)
	took, err := waitReady(ctx, ch, time.Minute, func(ctx context.Context) error { return httpGetOK(ctx, url) })
	if err != nil {
		return err
	}
	c.progress("kube-proxy ready in %.1fs", took.Seconds())
	return nil
}

// lockKubeProxy takes kubeProxyLock for as long as the cluster runs.
func (c *Cluster) lockKubeProxy() error {
	if c.proxyLock != nil {
		return nil
	}
	f, err := os.OpenFile(kubeProxyLock, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("lock %s: %w", kubeProxyLock, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return fmt.Errorf("another fedlet cluster runs kube-proxy on this machine (%s is locked): one cluster at a time can own the iptables rules; stop it, or start this one with --until agent", kubeProxyLock)
		}
		return fmt.Errorf("lock %s: %w", kubeProxyLock, err)
	}
	c.proxyLock = f
	return nil
}

// stopKubeProxy stops kube-proxy, then runs `kube-proxy --cleanup`, which
// removes the rules and chains that are kube-proxy's, then the kubelet's
// chain kube-proxy also makes, and lets go of the lock.
func (c *Cluster) stopKubeProxy() error {
	c.progress("stopping kube-proxy and removing its iptables rules…")
	err := c.kubeProxy.stop(stopTimeout)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err = errors.Join(err, runLogged(ctx, c.kubeProxy.log, filepath.Join(c.opts.BinDir, "kube-proxy"), "--cleanup"))
	for _, iptables := range []string{"iptables", "ip6tables"} {
		err = errors.Join(err, removeEmptyKubeletFirewall(ctx, iptables))
	}
	if c.proxyLock != nil {
		c.proxyLock.Close()
		c.proxyLock = nil
	}
	return err
}

// kubeletFirewall is the kubelet's chain in the filter table. kube-proxy
// makes it too, with jumps from INPUT and OUTPUT, and leaves it to the
// kubelet on cleanup; fedlet runs no kubelet.
const kubeletFirewall = "KUBE-FIREWALL"

// removeEmptyKubeletFirewall removes kubeletFirewall and the jumps to it
// when the chain holds no rule. A chain with rules is a kubelet's on this
// machine, and stays.
func removeEmptyKubeletFirewall(ctx context.Context, iptables string) error {
	run := func(args ...string) ([]byte, error) {
		return exec.CommandContext(ctx, iptables, append([]string{"-w", "5", "-t", "filter"}, args...)...).Output()
	}
	rules, err := run("-S", kubeletFirewall)
	if err != nil {
		return nil // no such chain (or no such table: nothing was made)
	}
	if strings.Contains(string(rules), "-A "+kubeletFirewall+" ") {
		return nil
	}
	for _, from := range []string{"INPUT", "OUTPUT"} {
		// Each call deletes one jump; there should be one.
		for range 10 {
			if _, err := run("-D", from, "-j", kubeletFirewall); err != nil {
				break
			}
		}
	}
	if _, err := run("-X", kubeletFirewall); err != nil {
		return fmt.Errorf("%s: remove the empty chain %s: %w", iptables, kubeletFirewall, err)
	}
	return nil
}

// runLogged runs a command to completion, its output appended to logPath.
func runLogged(ctx context.Context, logPath, path string, args ...string) error {
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("%s: open log: %w", path, err)
	}
	defer log.Close()
	fmt.Fprintf(log, "\n==== fedlet up %s: %s %v\n", time.Now().Format(time.RFC3339), path, args)
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %v: %w (see %s)", filepath.Base(path), args, err, logPath)
	}
	return nil
}
