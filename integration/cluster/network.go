package cluster

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// The cluster's address plan: what the agent's network config and the
// pods' resolv.conf are written from.
const (
	// ServiceCIDR is the Service IP range; its first address, 10.0.0.1, is
	// the "kubernetes" Service and is in the API server's certificate.
	ServiceCIDR = "10.0.0.0/24"
	// ClusterDNS is the ClusterIP of the kube-dns Service, the tenth address
	// of ServiceCIDR as under kubeadm: the nameserver of ClusterFirst pods.
	ClusterDNS = "10.0.0.10"
	// ClusterDomain is the DNS domain of Services and pods.
	ClusterDomain = "cluster.local"
	// ClusterCIDR is the default range of pod addresses (PodNetwork.CIDR).
	// The controller manager gives each Node a /NodeCIDRMaskSize of it in
	// spec.podCIDR.
	ClusterCIDR      = "10.244.0.0/16"
	NodeCIDRMaskSize = 24
)

// startNetwork runs kube-proxy, then CoreDNS behind the kube-dns Service,
// and waits until the cluster DNS address answers through kube-proxy's rules.
func (c *Cluster) startNetwork(ctx context.Context) error {
	hostIP, err := HostIP()
	if err != nil {
		return err
	}
	if err := c.startKubeProxy(ctx, hostIP); err != nil {
		return err
	}
	if err := c.startCoreDNS(ctx, hostIP); err != nil {
		return err
	}
	if err := applyKubeDNS(ctx, c.client, hostIP, c.opts.Ports.DNS); err != nil {
		return err
	}
	// The first Service a new user tries is this one: wait until kube-proxy
	// has programmed it and CoreDNS answers through it.
	want := firstServiceIP()
	took, err := waitReady(ctx, c.coreDNS, time.Minute, func(ctx context.Context) error {
		return resolvesTo(ctx, net.JoinHostPort(ClusterDNS, "53"), "kubernetes.default.svc."+ClusterDomain, want)
	})
	if err != nil {
		return fmt.Errorf("wait for DNS at %s:53 (kube-proxy log %s): %w", ClusterDNS, c.paths.Log("kube-proxy"), err)
	}
	c.progress("cluster DNS answers at %s:53 in %.1fs", ClusterDNS, took.Seconds())
	return nil
}

// firstServiceIP is the first address of ServiceCIDR, the "kubernetes" Service's.
func firstServiceIP() string {
	_, n, _ := net.ParseCIDR(ServiceCIDR)
	ip := n.IP.To4()
	return net.IPv4(ip[0], ip[1], ip[2], ip[3]+1).String()
}

// resolvesTo asks the DNS server at addr for name's A record and wants ip.
func resolvesTo(ctx context.Context, addr, name, ip string) error {
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
	got, err := r.LookupHost(ctx, name)
	if err != nil {
		return err
	}
	if len(got) != 1 || got[0] != ip {
		return fmt.Errorf("%s resolves to %v at %s, want %s", name, got, addr, ip)
	}
	return nil
}

// httpGetOK GETs a plain-HTTP url and wants 200.
func httpGetOK(ctx context.Context, url string) error {
	return getOK(ctx, http.DefaultClient, url)
}

// getOK GETs url with client and wants 200.
func getOK(ctx context.Context, client *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, body)
	}
	return nil
}

// HostIP is this machine's own IPv4 address: the first one of the interface
// the default route leaves by or, with no default route, of the first
// interface that is up and not loopback. Pods reach the host at it through
// their bridge's gateway, so it is where the cluster DNS Service points.
func HostIP() (net.IP, error) {
	iface, err := defaultRouteInterface("/proc/net/route")
	if err != nil {
		return nil, err
	}
	var ifaces []net.Interface
	if iface != "" {
		i, err := net.InterfaceByName(iface)
		if err != nil {
			return nil, fmt.Errorf("find the host's address: interface %s of the default route: %w", iface, err)
		}
		ifaces = []net.Interface{*i}
	} else if ifaces, err = net.Interfaces(); err != nil {
		return nil, fmt.Errorf("find the host's address: %w", err)
	}
	for _, i := range ifaces {
		if i.Flags&net.FlagUp == 0 || i.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, err := i.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && n.IP.IsGlobalUnicast() {
				return n.IP.To4(), nil
			}
		}
	}
	return nil, fmt.Errorf("find the host's address: no interface has a non-loopback IPv4 address (pods reach the cluster DNS through one)")
}

// defaultRouteInterface reads the kernel's IPv4 routing table (the format
// of /proc/net/route) and names the interface of the default route with
// the lowest metric, or "" when there is none.
func defaultRouteInterface(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("read the routing table: %w", err)
	}
	defer f.Close()
	const rtfUp = 0x1
	best, bestMetric := "", -1
	sc := bufio.NewScanner(f)
	sc.Scan() // the header: Iface Destination Gateway Flags RefCnt Use Metric Mask ...
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 8 || fields[1] != "00000000" || fields[7] != "00000000" {
			continue
		}
		flags, err1 := strconv.ParseUint(fields[3], 16, 32)
		metric, err2 := strconv.Atoi(fields[6])
		if err1 != nil || err2 != nil || flags&rtfUp == 0 {
			continue
		}
		if bestMetric < 0 || metric < bestMetric {
			best, bestMetric = fields[0], metric
		}
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("read the routing table: %w", err)
	}
	return best, nil
}
