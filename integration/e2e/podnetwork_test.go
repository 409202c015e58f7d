package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	cniplugin "github.com/fedlet/fedlet/cni/plugin"
	"github.com/fedlet/fedlet/core/config"
	"github.com/fedlet/fedlet/integration/cluster"
)

// webPod serves text at / on port 8080 of every address of the pod.
func webPod(name, text string) *corev1.Pod {
	p := busyboxPod(name, fmt.Sprintf("mkdir -p /www && echo %s > /www/index.html && exec httpd -f -p 8080 -h /www", text), corev1.RestartPolicyAlways)
	p.Spec.Containers[0].Ports = []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}
	return p
}

// podIP waits for the pod to run and returns its IP, checked to be in its
// node's pod CIDR.
func podIP(t *testing.T, ns, name string) string {
	t.Helper()
	p := waitPod(t, ns, name, time.Minute, "Running with an IP", func(p *corev1.Pod) bool {
		return p.Status.Phase == corev1.PodRunning && p.Status.PodIP != ""
	})
	node, err := env.Client().CoreV1().Nodes().Get(context.Background(), p.Spec.NodeName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, cidr, err := net.ParseCIDR(node.Spec.PodCIDR)
	if err != nil {
		t.Fatalf("node %s has pod CIDR %q: %v", node.Name, node.Spec.PodCIDR, err)
	}
	if ip := net.ParseIP(p.Status.PodIP); ip == nil || !cidr.Contains(ip) {
		t.Fatalf("pod %s has IP %q, not in its node's pod CIDR %s", name, p.Status.PodIP, cidr)
	}
	if len(p.Status.PodIPs) != 1 || p.Status.PodIPs[0].IP != p.Status.PodIP {
		t.Errorf("pod %s: podIPs %v, podIP %s", name, p.Status.PodIPs, p.Status.PodIP)
	}
	return p.Status.PodIP
}

// fetchFromPod runs a client pod that fetches url and returns what it got.
func fetchFromPod(t *testing.T, ns, name, node, url string) string {
	t.Helper()
	client := busyboxPod(name, fmt.Sprintf("for i in $(seq 60); do timeout 3 wget -q -O - %s && exit 0; sleep 1; done; exit 1", url), corev1.RestartPolicyNever)
	client.Spec.NodeName = node
	createPod(t, ns, client)
	p := waitPod(t, ns, name, 2*time.Minute, "finished", func(p *corev1.Pod) bool {
		return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
	})
	out, _ := kubectl(t, "-n", ns, "logs", name)
	if p.Status.Phase != corev1.PodSucceeded {
		t.Fatalf("client pod %s could not fetch %s: %s", name, url, out)
	}
	return out
}

// Two pods exchange data over their pod IPs; the host reaches a pod's IP
// and a hostPort.
func TestPodsTalkOverPodIPs(t *testing.T) {
	ns := namespace(t)
	server := webPod("server", "from-server")
	hostPort := int32(closedPort(t))
	server.Spec.Containers[0].Ports[0].HostPort = hostPort
	createPod(t, ns, server)
	ip := podIP(t, ns, "server")

	if out := fetchFromPod(t, ns, "client", env.NodeName(), "http://"+ip+":8080/"); out != "from-server\n" {
		t.Errorf("client pod fetched %q from the server's pod IP", out)
	}
	// The finished client gives its address back; its status keeps it.
	client, err := env.Client().CoreV1().Pods(ns).Get(context.Background(), "client", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "the finished pod's address released", func() (bool, string) {
		return !allocationOwners(t)[string(client.UID)], "still allocated"
	})
	if client.Status.PodIP == "" {
		t.Errorf("the finished pod's status lost its IP")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if body, err := get(ctx, "http://"+ip+":8080/"); err != nil || body != "from-server\n" {
		t.Errorf("the host fetched %q, %v from the pod's IP", body, err)
	}
	hostIP, err := cluster.HostIP()
	if err != nil {
		t.Fatal(err)
	}
	if body, err := get(ctx, fmt.Sprintf("http://%s:%d/", hostIP, hostPort)); err != nil || body != "from-server\n" {
		t.Errorf("the host fetched %q, %v from the pod's hostPort %d", body, err, hostPort)
	}
}

// ipamState counts host-local's address allocations and the host's veths.
type ipamState struct{ allocations, veths int }

func hostNetworkState(t *testing.T) ipamState {
	t.Helper()
	var s ipamState
	entries, _ := os.ReadDir(filepath.Join(env.Paths().DataDir, "fedlet", "cni", "ipam", "fedlet"))
	for _, e := range entries {
		if net.ParseIP(e.Name()) != nil {
			s.allocations++
		}
	}
	out, err := exec.Command("ip", "-o", "link", "show", "type", "veth").Output()
	if err != nil {
		t.Fatalf("list veths: %v", err)
	}
	s.veths = strings.Count(string(out), "\n")
	return s
}

// secondNetworkAgent is the cluster's agent config for one more node,
// e2e-<name>, on its own runtime state and its own network plugin process
// attaching pods to the machine's pod bridge from the node's own pod CIDR
// (allocated by the controller-manager), with host-local's allocations and
// libcni's cache of its own. conflist is where its conflist is to be.
func secondNetworkAgent(t *testing.T, name string) (cfg *config.Agent, conflist string) {
	t.Helper()
	cfg = loadClusterAgentConfig(t)
	dir := t.TempDir()
	rt := withStateDir(cfg.Runtimes[0], dir)
	rt.Name = "runtime-" + name
	var netCfg cniplugin.Config
	if err := json.Unmarshal(cfg.Networks[0].Config, &netCfg); err != nil {
		t.Fatal(err)
	}
	conflist = filepath.Join(dir, "net.conflist")
	netCfg.ConflistFile, netCfg.CacheDir = conflist, filepath.Join(dir, "cni-cache")
	raw, err := json.Marshal(netCfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Runtimes = []config.Runtime{rt}
	cfg.Networks = []config.Network{{Name: "network-" + name, Plugin: cfg.Networks[0].Plugin, Config: raw}}
	cfg.Nodes = []config.Node{{Name: "e2e-" + name, Runtime: rt.Name, Network: "network-" + name}}
	return cfg, conflist
}

func writeConflist(t *testing.T, path string) {
	t.Helper()
	data := cniplugin.DefaultConflist("fedlet0", filepath.Join(filepath.Dir(path), "ipam"))
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// Pods on two fedlet nodes of the machine reach each other by pod IP.
func TestPodsTalkAcrossNodes(t *testing.T) {
	cfg, conflist := secondNetworkAgent(t, "net2")
	writeConflist(t, conflist)
	stop := startAgent(t, writeConfig(t, cfg))
	defer stop()
	waitNodeCondition(t, "e2e-net2", corev1.NodeReady, corev1.ConditionTrue, "")

	ns := namespace(t)
	server := webPod("server", "across-nodes")
	server.Spec.NodeName = env.NodeName()
	createPod(t, ns, server)
	ip := podIP(t, ns, "server")
	if out := fetchFromPod(t, ns, "remote-client", "e2e-net2", "http://"+ip+":8080/"); out != "across-nodes\n" {
		t.Errorf("client on e2e-net2 fetched %q from the server on %s", out, env.NodeName())
	}
	clientIP := waitPod(t, ns, "remote-client", time.Minute, "with an IP", func(p *corev1.Pod) bool { return p.Status.PodIP != "" }).Status.PodIP
	if same := ip[:strings.LastIndex(ip, ".")] == clientIP[:strings.LastIndex(clientIP, ".")]; same {
		t.Errorf("server %s and client %s share a /24: the nodes' pod CIDRs should differ", ip, clientIP)
	}
	deleteAndWait(t, ns, "remote-client")
}

// A node whose conflist is missing says NetworkReady=false naming it, and
// its pods wait with an event; once the conflist is written they run.
func TestNetworkNotReadyUntilConflistExists(t *testing.T) {
	cfg, conflist := secondNetworkAgent(t, "nonet")
	stop := startAgent(t, writeConfig(t, cfg))
	defer stop()
	waitNodeCondition(t, "e2e-nonet", "NetworkReady", corev1.ConditionFalse, conflist)
	waitNodeCondition(t, "e2e-nonet", corev1.NodeReady, corev1.ConditionFalse, "network not ready")

	ns := namespace(t)
	p := busyboxPod("waits", "echo networked; sleep 3600", corev1.RestartPolicyAlways)
	p.Spec.NodeName = "e2e-nonet"
	createPod(t, ns, p)
	waitFor(t, time.Minute, "an event saying the network is missing", func() (bool, string) {
		events, err := env.Client().CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{FieldSelector: "involvedObject.name=waits"})
		if err != nil {
			return false, err.Error()
		}
		for _, e := range events.Items {
			if e.Reason == "FailedCreatePodSandBox" && strings.Contains(e.Message, conflist) {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d events", len(events.Items))
	})
	if got := waitingReason(waitPod(t, ns, "waits", time.Minute, "waiting", func(p *corev1.Pod) bool { return waitingReason(p) != "" })); got != "ContainerCreating" {
		t.Errorf("pod waits with reason %q, want ContainerCreating", got)
	}

	writeConflist(t, conflist)
	waitNodeCondition(t, "e2e-nonet", "NetworkReady", corev1.ConditionTrue, "")
	podIP(t, ns, "waits")
	deleteAndWait(t, ns, "waits")
}

func waitNodeCondition(t *testing.T, node string, cond corev1.NodeConditionType, want corev1.ConditionStatus, message string) {
	t.Helper()
	waitFor(t, time.Minute, fmt.Sprintf("node %s %s=%s", node, cond, want), func() (bool, string) {
		n, err := env.Client().CoreV1().Nodes().Get(context.Background(), node, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		for _, c := range n.Status.Conditions {
			if c.Type == cond {
				return c.Status == want && strings.Contains(c.Message, message), fmt.Sprintf("%s %s: %s", c.Status, c.Reason, c.Message)
			}
		}
		return false, "no such condition"
	})
}

func deleteAndWait(t *testing.T, ns, name string) {
	t.Helper()
	if err := env.Client().CoreV1().Pods(ns).Delete(context.Background(), name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitGone(t, ns, name, time.Minute)
}

// A Deployment behind a Service answers by the Service's DNS name from a
// client pod (CoreDNS and kube-proxy of the local cluster); a pod that fails
// its readiness probe drops out of the Service's endpoints.
func TestServiceByDNSName(t *testing.T) {
	ns := namespace(t)
	ctx := context.Background()
	replicas := int32(2)
	labels := map[string]string{"app": "web"}
	tmpl := webPod("", "via-service")
	tmpl.Labels = labels
	tmpl.Spec.Containers[0].ReadinessProbe = &corev1.Probe{
		ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/index.html", Port: intstr.FromString("http")}},
		PeriodSeconds: 1, FailureThreshold: 1,
	}
	deploy := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: tmpl.ObjectMeta, Spec: tmpl.Spec},
		},
	}
	if _, err := env.Client().AppsV1().Deployments(ns).Create(ctx, deploy, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec:       corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromString("http")}}},
	}
	if _, err := env.Client().CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	readyIPs := func() map[string]bool {
		slices, err := env.Client().DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: "kubernetes.io/service-name=web"})
		if err != nil {
			t.Fatal(err)
		}
		ips := map[string]bool{}
		for _, s := range slices.Items {
			for _, e := range s.Endpoints {
				if e.Conditions.Ready != nil && *e.Conditions.Ready {
					ips[e.Addresses[0]] = true
				}
			}
		}
		return ips
	}
	waitFor(t, 2*time.Minute, "two ready endpoints", func() (bool, string) {
		ips := readyIPs()
		return len(ips) == 2, fmt.Sprint(ips)
	})

	url := fmt.Sprintf("http://web.%s.svc.cluster.local/", ns)
	if out := fetchFromPod(t, ns, "client", env.NodeName(), url); out != "via-service\n" {
		t.Errorf("client pod fetched %q from %s", out, url)
	}

	// One pod stops serving its page: its readiness probe fails, and it
	// leaves the endpoints while the other stays.
	pods, err := env.Client().CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil || len(pods.Items) != 2 {
		t.Fatalf("web pods: %v, %v", pods, err)
	}
	sick := pods.Items[0]
	if _, err := kubectl(t, "-n", ns, "exec", sick.Name, "--", "rm", "/www/index.html"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "the sick pod out of the endpoints", func() (bool, string) {
		ips := readyIPs()
		return len(ips) == 1 && !ips[sick.Status.PodIP] && ips[pods.Items[1].Status.PodIP], fmt.Sprint(ips)
	})
	p := waitPod(t, ns, sick.Name, time.Minute, "not Ready", func(p *corev1.Pod) bool {
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady {
				return c.Status == corev1.ConditionFalse
			}
		}
		return false
	})
	if p.Status.Phase != corev1.PodRunning {
		t.Errorf("the unready pod is %s, want still Running", p.Status.Phase)
	}
}
