package cluster

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"strconv"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// startAPIServer runs kube-apiserver against the datastore and waits for
// /readyz. It serves on every address of the machine and advertises the
// machine's own, so that the "kubernetes" Service's endpoint is one pods
// reach (their in-cluster clients, through kube-proxy).
func (c *Cluster) startAPIServer(ctx context.Context, etcdURL string) error {
	p := c.pki
	c.progress("starting kube-apiserver on https://127.0.0.1:%d…", c.opts.Ports.APIServer)
	ch, err := c.start("kube-apiserver", []string{
		"--advertise-address=" + c.hostIP.String(),
		"--bind-address=0.0.0.0",
		"--secure-port=" + strconv.Itoa(c.opts.Ports.APIServer),
		"--etcd-servers=" + etcdURL,
		"--authorization-mode=Node,RBAC",
		"--allow-privileged=true",
		"--service-cluster-ip-range=" + ServiceCIDR,
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + p.saPub(),
		"--service-account-signing-key-file=" + p.saKey(),
		"--tls-cert-file=" + p.cert(certAPIServer),
		"--tls-private-key-file=" + p.key(certAPIServer),
		"--client-ca-file=" + p.caCert(),
		"--kubelet-client-certificate=" + p.cert(certKubeletClient),
		"--kubelet-client-key=" + p.key(certKubeletClient),
		"--kubelet-certificate-authority=" + p.caCert(),
		"--kubelet-preferred-address-types=InternalIP,Hostname",
		// The front proxy, as kubeadm sets it up: without it, every component
		// using delegated authentication complains of a missing CA bundle,
		// and aggregated API servers (metrics-server) cannot trust the API server.
		"--requestheader-client-ca-file=" + p.frontProxyCACert(),
		"--requestheader-allowed-names=front-proxy-client",
		"--requestheader-username-headers=X-Remote-User",
		"--requestheader-group-headers=X-Remote-Group",
		"--requestheader-extra-headers-prefix=X-Remote-Extra-",
		"--proxy-client-cert-file=" + p.cert(certFrontProxyClient),
		"--proxy-client-key-file=" + p.key(certFrontProxyClient),
	}, startOptions{dir: c.paths.DataDir})
	if err != nil {
		return err
	}
	c.apiServer = ch
	took, err := waitReady(ctx, ch, 2*time.Minute, func(ctx context.Context) error {
		_, err := c.client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		return err
	})
	if err != nil {
		return err
	}
	c.progress("kube-apiserver ready in %.1fs", took.Seconds())
	return nil
}

// startControllers runs kube-controller-manager and kube-scheduler on
// loopback and waits for the /healthz of each.
func (c *Cluster) startControllers(ctx context.Context) error {
	p := c.pki
	cmKubeconfig := p.kubeconfig("controller-manager")
	c.progress("starting kube-controller-manager and kube-scheduler…")
	cm, err := c.start("kube-controller-manager", []string{
		"--kubeconfig=" + cmKubeconfig,
		"--authentication-kubeconfig=" + cmKubeconfig,
		"--authorization-kubeconfig=" + cmKubeconfig,
		"--bind-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(c.opts.Ports.ControllerManager),
		"--tls-cert-file=" + p.cert(certCMServing),
		"--tls-private-key-file=" + p.key(certCMServing),
		"--use-service-account-credentials=true",
		"--cluster-signing-cert-file=" + p.caCert(),
		"--cluster-signing-key-file=" + p.caKeyFile(),
		"--root-ca-file=" + p.caCert(),
		"--service-account-private-key-file=" + p.saKey(),
		"--service-cluster-ip-range=" + ServiceCIDR,
		// Each Node gets spec.podCIDR, a /24 of the cluster CIDR, from
		// which the network plugin gives its pods their addresses.
		"--allocate-node-cidrs=true",
		"--cluster-cidr=" + c.opts.PodNetwork.CIDR,
		"--node-cidr-mask-size=" + strconv.Itoa(NodeCIDRMaskSize),
		"--leader-elect=false",
	}, startOptions{dir: c.paths.DataDir})
	if err != nil {
		return err
	}
	schedKubeconfig := p.kubeconfig("scheduler")
	sched, err := c.start("kube-scheduler", []string{
		"--kubeconfig=" + schedKubeconfig,
		"--authentication-kubeconfig=" + schedKubeconfig,
		"--authorization-kubeconfig=" + schedKubeconfig,
		"--bind-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(c.opts.Ports.Scheduler),
		"--tls-cert-file=" + p.cert(certSchedulerServing),
		"--tls-private-key-file=" + p.key(certSchedulerServing),
		"--leader-elect=false",
	}, startOptions{dir: c.paths.DataDir})
	if err != nil {
		return err
	}
	for _, w := range []struct {
		ch   *child
		port int
	}{{cm, c.opts.Ports.ControllerManager}, {sched, c.opts.Ports.Scheduler}} {
		url := fmt.Sprintf("https://127.0.0.1:%d/healthz", w.port)
		took, err := waitReady(ctx, w.ch, 2*time.Minute, func(ctx context.Context) error {
			return c.httpOK(ctx, url)
		})
		if err != nil {
			return err
		}
		c.progress("%s ready in %.1fs", w.ch.name, took.Seconds())
	}
	// Pods are refused until the controller manager has made the
	// namespace's "default" ServiceAccount; a user told the cluster is up
	// must be able to run one at once.
	took, err := waitReady(ctx, cm, time.Minute, func(ctx context.Context) error {
		_, err := c.client.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("wait for the default ServiceAccount: %w", err)
	}
	c.progress("service account default/default ready in %.1fs", took.Seconds())
	return nil
}

// httpOK GETs url, trusting the cluster's CA only, and wants 200.
func (c *Cluster) httpOK(ctx context.Context, url string) error {
	client := &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: c.pki.caPool},
	}}
	defer client.CloseIdleConnections()
	return getOK(ctx, client, url)
}
