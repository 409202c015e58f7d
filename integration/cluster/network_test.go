package cluster

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/yaml"
)

func TestClusterDNSIsTheTenthServiceAddress(t *testing.T) {
	_, n, err := net.ParseCIDR(ServiceCIDR)
	if err != nil {
		t.Fatal(err)
	}
	ip := n.IP.To4()
	if want := net.IPv4(ip[0], ip[1], ip[2], ip[3]+10).String(); ClusterDNS != want || !n.Contains(net.ParseIP(ClusterDNS)) {
		t.Errorf("ClusterDNS = %s, want %s in %s", ClusterDNS, want, ServiceCIDR)
	}
	if firstServiceIP() != "10.0.0.1" {
		t.Errorf("first Service address %s, want 10.0.0.1 (in the API server's certificate)", firstServiceIP())
	}
	_, pods, err := net.ParseCIDR(ClusterCIDR)
	if err != nil || pods.Contains(n.IP) || n.Contains(pods.IP) {
		t.Errorf("ClusterCIDR %s overlaps ServiceCIDR %s (%v)", ClusterCIDR, ServiceCIDR, err)
	}
}

func TestDefaultRouteInterfaceTakesTheLowestMetric(t *testing.T) {
	path := filepath.Join(t.TempDir(), "route")
	table := "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n" +
		"wlan0\t00000000\t0102A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0\n" +
		"cni0\t0000F40A\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n" +
		"eth0\t00000000\t010200C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n" +
		"down0\t00000000\t010200C0\t0002\t0\t0\t1\t00000000\t0\t0\t0\n"
	if err := os.WriteFile(path, []byte(table), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := defaultRouteInterface(path); err != nil || got != "eth0" {
		t.Errorf("defaultRouteInterface = %q, %v; want eth0", got, err)
	}
	if err := os.WriteFile(path, []byte(strings.SplitAfterN(table, "\n", 2)[0]), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := defaultRouteInterface(path); err != nil || got != "" {
		t.Errorf("no default route: %q, %v", got, err)
	}
}

func TestHostIPIsNotLoopback(t *testing.T) {
	ip, err := HostIP()
	need(t, "a non-loopback IPv4 address", err == nil)
	if ip.To4() == nil || ip.IsLoopback() {
		t.Errorf("HostIP = %s", ip)
	}
}

func TestCorefileForwardsOnlyWithANameserver(t *testing.T) {
	p := Ports{DNS: 10053, DNSHealth: 10054, DNSReady: 10055}
	conf := corefile("/k", net.ParseIP("192.0.2.2"), p, false)
	for _, want := range []string{".:10053 {", "bind 127.0.0.1 192.0.2.2", "health 127.0.0.1:10054", "ready 127.0.0.1:10055",
		"kubernetes cluster.local in-addr.arpa ip6.arpa {", "kubeconfig /k fedlet"} {
		if !strings.Contains(conf, want) {
			t.Errorf("Corefile lacks %q:\n%s", want, conf)
		}
	}
	if strings.Contains(conf, "forward") {
		t.Errorf("forwards without a nameserver:\n%s", conf)
	}
	if !strings.Contains(corefile("/k", net.ParseIP("192.0.2.2"), p, true), "forward . /etc/resolv.conf") {
		t.Errorf("does not forward with a nameserver")
	}
	resolv := filepath.Join(t.TempDir(), "resolv.conf")
	os.WriteFile(resolv, []byte("# none\nsearch example\n"), 0o644)
	if hasNameserver(resolv) {
		t.Errorf("found a nameserver in a file without one")
	}
	os.WriteFile(resolv, []byte("search example\nnameserver 10.255.255.53\n"), 0o644)
	if !hasNameserver(resolv) {
		t.Errorf("missed the nameserver")
	}
}

func TestNetworkPartNeedsKubeProxyAndCoreDNS(t *testing.T) {
	got := " " + strings.Join(requiredComponents(Options{Until: PartNetwork}), " ") + " "
	for _, want := range []string{"kube-proxy", "coredns", "fedlet-runtime-containerd"} {
		if !strings.Contains(got, " "+want+" ") {
			t.Errorf("the network part needs %s: %s", want, got)
		}
	}
	if got := strings.Join(makeTargets("/b", []string{"kube-proxy", "coredns"}), " "); got != "controlplane /b/coredns" {
		t.Errorf("targets %s", got)
	}
	if o, err := (Options{DataDir: "d", BinDir: "b"}).withDefaults(); err != nil || o.Until != PartNetwork {
		t.Errorf("default Until = %v (%v), want everything", o.Until, err)
	}
}

func TestKubeProxyConfigLeavesSysctlsAlone(t *testing.T) {
	var cfg map[string]any
	text := kubeProxyConfig("/k", "node-a", ClusterCIDR, net.ParseIP("192.0.2.2"), DefaultPorts())
	if err := yaml.Unmarshal([]byte(text), &cfg); err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	want := map[string]any{
		"kind": "KubeProxyConfiguration", "mode": "iptables", "hostnameOverride": "node-a", "bindAddress": "192.0.2.2",
		"clusterCIDR": ClusterCIDR, "healthzBindAddress": "127.0.0.1:10256", "metricsBindAddress": "127.0.0.1:10249",
		"oomScoreAdj": float64(0),
	}
	for k, v := range want {
		if cfg[k] != v {
			t.Errorf("%s = %v, want %v", k, cfg[k], v)
		}
	}
	ct, _ := cfg["conntrack"].(map[string]any)
	for _, k := range []string{"maxPerCore", "min", "tcpEstablishedTimeout", "tcpCloseWaitTimeout"} {
		if v, ok := ct[k]; !ok || (v != float64(0) && v != "0s") {
			t.Errorf("conntrack.%s = %v, want zero (leave the machine's value)", k, v)
		}
	}
	if ipt, _ := cfg["iptables"].(map[string]any); ipt["localhostNodePorts"] != false {
		t.Errorf("iptables.localhostNodePorts = %v, want false (no route_localnet)", ipt["localhostNodePorts"])
	}
}

// TestServicesAndDNS serves HTTP from a hostNetwork pod behind a ClusterIP
// and a NodePort Service, reaches it from the host through kube-proxy's
// rules, resolves its name through CoreDNS (on its port and at the cluster
// DNS address), checks that stopping leaves no kube-proxy chain behind, and
// that a second start on the same directory serves the same names again.
func TestServicesAndDNS(t *testing.T) {
	need(t, "root", os.Geteuid() == 0)
	for _, tool := range []string{"runc", "iptables-save", "conntrack"} {
		_, err := exec.LookPath(tool)
		need(t, tool+" on PATH", err == nil)
	}
	hostIP, err := HostIP()
	need(t, "a non-loopback IPv4 address", err == nil)
	kubeChains(t) // fails now, not after the test, if iptables-save does not work

	dataDir := t.TempDir()
	ports, err := FreePorts()
	if err != nil {
		t.Fatal(err)
	}
	c := startCluster(t, Options{DataDir: dataDir, Ports: ports})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cs := c.Client()
	const ns = "default"

	port := freeTCPPort(t)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{
			HostNetwork: true,
			Containers: []corev1.Container{{
				Name: "httpd", Image: c.Image(),
				Command: []string{"sh", "-c", fmt.Sprintf("mkdir -p /tmp/www && echo hello-svc > /tmp/www/index.html && exec httpd -f -p %d -h /tmp/www", port)},
			}},
		},
	}
	if _, err := cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	svcPort := []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromInt32(int32(port))}}
	web, err := cs.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": "web"}, Ports: svcPort},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	np, err := cs.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web-np"},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, Selector: map[string]string{"app": "web"}, Ports: svcPort},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	running := waitFor(t, ctx, "pod web Running", func(ctx context.Context) error {
		p, err := cs.CoreV1().Pods(ns).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if p.Status.Phase != corev1.PodRunning {
			return fmt.Errorf("pod web is %s (agent log %s)", p.Status.Phase, c.Paths().Log("agent"))
		}
		return nil
	})
	if !running {
		return
	}
	p, err := cs.CoreV1().Pods(ns).Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ip := net.ParseIP(p.Status.PodIP); ip == nil || ip.IsLoopback() {
		t.Fatalf("the hostNetwork pod's IP is %q: loopback addresses cannot be Service endpoints; "+
			"the node must advertise the host's address (%s)", p.Status.PodIP, hostIP)
	}

	clusterIP := web.Spec.ClusterIP
	waitFor(t, ctx, "the ClusterIP from the host", func(ctx context.Context) error {
		return getBody(ctx, fmt.Sprintf("http://%s:80/", clusterIP), "hello-svc")
	})
	waitFor(t, ctx, "the NodePort on the host's address", func(ctx context.Context) error {
		return getBody(ctx, fmt.Sprintf("http://%s:%d/", hostIP, np.Spec.Ports[0].NodePort), "hello-svc")
	})
	name := "web." + ns + ".svc." + ClusterDomain
	for _, server := range []string{net.JoinHostPort("127.0.0.1", fmt.Sprint(ports.DNS)), net.JoinHostPort(ClusterDNS, "53")} {
		waitFor(t, ctx, name+" at "+server, func(ctx context.Context) error {
			return resolvesTo(ctx, server, name, clusterIP)
		})
	}

	if err := c.Stop(context.Background()); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if left := kubeChains(t); len(left) > 0 {
		t.Errorf("after stop, iptables still has kube-proxy's chains: %v", left)
	}

	// Everything again from the same directory: the Service and the
	// kube-dns objects are the stored ones, updated in place.
	c = startCluster(t, Options{DataDir: dataDir, Ports: ports, Until: PartNetwork})
	waitFor(t, ctx, name+" after a restart", func(ctx context.Context) error {
		return resolvesTo(ctx, net.JoinHostPort(ClusterDNS, "53"), name, clusterIP)
	})
	if err := c.Stop(context.Background()); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if left := kubeChains(t); len(left) > 0 {
		t.Errorf("after the second stop, iptables still has kube-proxy's chains: %v", left)
	}
}

// waitFor polls check for up to a minute, and reports its last error as a
// test error if it never succeeds.
func waitFor(t *testing.T, ctx context.Context, what string, check func(context.Context) error) bool {
	t.Helper()
	var last error
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		attempt, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		last = check(attempt)
		return last == nil, nil
	})
	if err != nil {
		t.Errorf("%s: %v", what, last)
		return false
	}
	return true
}

// getBody GETs url and wants a 200 whose body is want.
func getBody(ctx context.Context, url, want string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != want {
		return fmt.Errorf("GET %s: %s %q, want 200 %q", url, resp.Status, body, want)
	}
	return nil
}

func freeTCPPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp4", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// kubeChains lists the chains named KUBE-* in iptables and ip6tables.
func kubeChains(t *testing.T) []string {
	t.Helper()
	var chains []string
	for _, save := range []string{"iptables-save", "ip6tables-save"} {
		out, err := exec.Command(save).Output()
		if err != nil {
			t.Fatalf("%s: %v", save, err)
		}
		for _, line := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(line, ":KUBE-") {
				chains = append(chains, save+" "+strings.Fields(line)[0][1:])
			}
		}
	}
	return chains
}
