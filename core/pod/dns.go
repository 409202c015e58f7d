package pod

import (
	"bufio"
	"os"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// The kubelet's limits on a pod's resolver configuration.
const (
	maxDNSSearches = 32
	clusterNdots   = "ndots:5"
)

// hostResolvConf is read for the search paths that cluster pods inherit.
var hostResolvConf = "/etc/resolv.conf"

// podDNS computes the pod's resolv.conf as the kubelet does from its
// dnsPolicy and dnsConfig; nil means the host's own file.
func (c *specBuilder) podDNS(pod *corev1.Pod) *runtimev1.DNSConfig {
	var dns *runtimev1.DNSConfig
	policy := pod.Spec.DNSPolicy
	clusterFirst := policy == "" || policy == corev1.DNSClusterFirst || policy == corev1.DNSClusterFirstWithHostNet
	if policy == corev1.DNSClusterFirst && pod.Spec.HostNetwork {
		clusterFirst = false // as the kubelet: host-network pods need ClusterFirstWithHostNet
	}
	switch {
	case policy == corev1.DNSNone:
		dns = &runtimev1.DNSConfig{}
	case clusterFirst && len(c.clusterDNS) > 0:
		domain := c.clusterDomain
		dns = &runtimev1.DNSConfig{
			Servers:  slices.Clone(c.clusterDNS),
			Searches: []string{pod.Namespace + ".svc." + domain, "svc." + domain, domain},
			Options:  []string{clusterNdots},
		}
		dns.Searches = append(dns.Searches, hostSearches()...)
	}
	if cfg := pod.Spec.DNSConfig; cfg != nil {
		if dns == nil {
			dns = hostDNS()
		}
		dns.Servers = appendNew(dns.Servers, cfg.Nameservers...)
		dns.Searches = appendNew(dns.Searches, cfg.Searches...)
		for _, o := range cfg.Options {
			opt := o.Name
			if o.Value != nil {
				opt += ":" + *o.Value
			}
			dns.Options = mergeOption(dns.Options, opt)
		}
	}
	if dns != nil && len(dns.Searches) > maxDNSSearches {
		dns.Searches = dns.Searches[:maxDNSSearches]
	}
	return dns
}

// hostDNS is the host's resolv.conf, the base a dnsConfig adds to.
func hostDNS() *runtimev1.DNSConfig {
	dns := &runtimev1.DNSConfig{}
	forEachResolvLine(func(key string, values []string) {
		switch key {
		case "nameserver":
			dns.Servers = append(dns.Servers, values...)
		case "search":
			dns.Searches = values
		case "options":
			dns.Options = append(dns.Options, values...)
		}
	})
	return dns
}

func hostSearches() []string {
	var searches []string
	forEachResolvLine(func(key string, values []string) {
		if key == "search" {
			searches = values
		}
	})
	return searches
}

func forEachResolvLine(fn func(key string, values []string)) {
	f, err := os.Open(hostResolvConf)
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") || strings.HasPrefix(fields[0], ";") {
			continue
		}
		fn(fields[0], fields[1:])
	}
}

func appendNew(list []string, more ...string) []string {
	for _, s := range more {
		if !slices.Contains(list, s) {
			list = append(list, s)
		}
	}
	return list
}

// mergeOption sets opt, replacing an option of the same name.
func mergeOption(opts []string, opt string) []string {
	name, _, _ := strings.Cut(opt, ":")
	for i, o := range opts {
		if n, _, _ := strings.Cut(o, ":"); n == name {
			opts[i] = opt
			return opts
		}
	}
	return append(opts, opt)
}
