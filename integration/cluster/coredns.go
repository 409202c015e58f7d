package cluster

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
)

// CoreDNS's identity, and the kube-dns Service that stands for it.
const (
	coreDNSUser = "fedlet-coredns"
	dnsService  = "kube-dns"
	dnsNS       = "kube-system"
	// managedBy marks the EndpointSlice fedlet up keeps, so that the
	// EndpointSlice controllers leave it alone.
	managedBy = "fedlet.io"
)

// corefile is CoreDNS's configuration: the kubernetes plugin serving
// ClusterDomain and the reverse zones from the API server, on port
// p.DNS of loopback and the host's address, health and readiness on
// loopback. Other names are forwarded to the host's resolvers when it has
// any (a host process needs no loop protection: its resolv.conf is not the
// pods').
func corefile(kubeconfig string, hostIP net.IP, p Ports, forward bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, `.:%d {
    bind 127.0.0.1 %s
    errors
    health 127.0.0.1:%d
    ready 127.0.0.1:%d
    kubernetes %s in-addr.arpa ip6.arpa {
        kubeconfig %s fedlet
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 30
    }
`, p.DNS, hostIP, p.DNSHealth, p.DNSReady, ClusterDomain, kubeconfig)
	if forward {
		b.WriteString("    forward . /etc/resolv.conf\n")
	}
	b.WriteString("    cache 30\n    loadbalance\n}\n")
	return b.String()
}

// hasNameserver says whether a resolv.conf names a nameserver; CoreDNS
// refuses to start when told to forward to a file that names none.
func hasNameserver(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) >= 2 && fields[0] == "nameserver" {
			return true
		}
	}
	return false
}

// startCoreDNS gives CoreDNS what it reads, runs it on the host and waits
// for its /ready, which answers once its caches of the API are filled.
func (c *Cluster) startCoreDNS(ctx context.Context, hostIP net.IP) error {
	if err := applyCoreDNSRBAC(ctx, c.client); err != nil {
		return err
	}
	forward := hasNameserver("/etc/resolv.conf")
	conf := corefile(c.pki.kubeconfig("coredns"), hostIP, c.opts.Ports, forward)
	if err := writeFile(c.paths.Corefile, []byte(conf), 0o644); err != nil {
		return err
	}
	c.progress("starting CoreDNS on %s:%d and 127.0.0.1:%d…", hostIP, c.opts.Ports.DNS, c.opts.Ports.DNS)
	if !forward {
		c.progress("/etc/resolv.conf names no nameserver: CoreDNS answers for %s only", ClusterDomain)
	}
	ch, err := c.start("coredns", []string{"-conf", c.paths.Corefile}, startOptions{dir: c.paths.DataDir})
	if err != nil {
		return err
	}
	c.coreDNS = ch
	url := fmt.Sprintf("http://127.0.0.1:%d/ready", c.opts.Ports.DNSReady)
	took, err := waitReady(ctx, ch, time.Minute, func(ctx context.Context) error { return httpGetOK(ctx, url) })
	if err != nil {
		return err
	}
	c.progress("CoreDNS ready in %.1fs", took.Seconds())
	return nil
}

// coreDNSClusterRole is what CoreDNS's kubernetes plugin reads.
func coreDNSClusterRole() *rbacv1.ClusterRole {
	return &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: coreDNSUser},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"services", "pods", "namespaces", "endpoints"}, Verbs: []string{"list", "watch"}},
			{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, Verbs: []string{"list", "watch"}},
		},
	}
}

// applyCoreDNSRBAC binds coreDNSClusterRole to CoreDNS's user.
func applyCoreDNSRBAC(ctx context.Context, cs kubernetes.Interface) error {
	cr := cs.RbacV1().ClusterRoles()
	if err := apply(ctx, coreDNSClusterRole(), cr.Create, cr.Get, cr.Update, func(have, want *rbacv1.ClusterRole) { have.Rules = want.Rules }); err != nil {
		return err
	}
	crb := cs.RbacV1().ClusterRoleBindings()
	return apply(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: coreDNSUser},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: coreDNSUser},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: coreDNSUser}},
	}, crb.Create, crb.Get, crb.Update, func(have, want *rbacv1.ClusterRoleBinding) { have.Subjects = want.Subjects })
}

// dnsPorts are the kube-dns Service's ports; the EndpointSlice names the
// same ones, which is how kube-proxy pairs them.
var dnsPorts = []struct {
	name  string
	proto corev1.Protocol
}{{"dns", corev1.ProtocolUDP}, {"dns-tcp", corev1.ProtocolTCP}}

// kubeDNSService is the kube-dns Service at ClusterDNS. It has no
// selector: CoreDNS is no pod, and its one endpoint is kept by fedlet up.
func kubeDNSService(port int) *corev1.Service {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: dnsService, Namespace: dnsNS, Labels: map[string]string{
			"k8s-app": "kube-dns", "kubernetes.io/name": "CoreDNS",
		}},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIP: ClusterDNS, ClusterIPs: []string{ClusterDNS}},
	}
	for _, p := range dnsPorts {
		svc.Spec.Ports = append(svc.Spec.Ports, corev1.ServicePort{
			Name: p.name, Protocol: p.proto, Port: 53, TargetPort: intstr.FromInt32(int32(port)),
		})
	}
	return svc
}

// kubeDNSEndpoints is kube-dns's EndpointSlice: CoreDNS on the host's
// address, which pods reach through their bridge's gateway and the host
// reaches directly.
func kubeDNSEndpoints(hostIP net.IP, port int) *discoveryv1.EndpointSlice {
	ready := true
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: dnsService, Namespace: dnsNS, Labels: map[string]string{
			discoveryv1.LabelServiceName: dnsService,
			discoveryv1.LabelManagedBy:   managedBy,
		}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{{
			Addresses:  []string{hostIP.String()},
			Conditions: discoveryv1.EndpointConditions{Ready: &ready},
		}},
	}
	for _, p := range dnsPorts {
		name, proto, port := p.name, p.proto, int32(port)
		slice.Ports = append(slice.Ports, discoveryv1.EndpointPort{Name: &name, Protocol: &proto, Port: &port})
	}
	return slice
}

// applyKubeDNS creates or updates the kube-dns Service and its
// EndpointSlice: the host's address and CoreDNS's port may have changed
// since the last run.
func applyKubeDNS(ctx context.Context, cs kubernetes.Interface, hostIP net.IP, port int) error {
	svcs := cs.CoreV1().Services(dnsNS)
	want := kubeDNSService(port)
	have, err := svcs.Get(ctx, dnsService, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		if _, err := svcs.Create(ctx, want, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create Service %s/%s: %w", dnsNS, dnsService, err)
		}
	case err != nil:
		return fmt.Errorf("get Service %s/%s: %w", dnsNS, dnsService, err)
	case have.Spec.ClusterIP != ClusterDNS:
		return fmt.Errorf("Service %s/%s has ClusterIP %s, not the cluster DNS address %s: delete it and start again",
			dnsNS, dnsService, have.Spec.ClusterIP, ClusterDNS)
	default:
		have.Labels, have.Spec.Ports, have.Spec.Selector = want.Labels, want.Spec.Ports, nil
		if _, err := svcs.Update(ctx, have, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("update Service %s/%s: %w", dnsNS, dnsService, err)
		}
	}
	eps := cs.DiscoveryV1().EndpointSlices(dnsNS)
	return apply(ctx, kubeDNSEndpoints(hostIP, port), eps.Create, eps.Get, eps.Update,
		func(have, want *discoveryv1.EndpointSlice) {
			have.Labels, have.AddressType, have.Endpoints, have.Ports = want.Labels, want.AddressType, want.Endpoints, want.Ports
		})
}
