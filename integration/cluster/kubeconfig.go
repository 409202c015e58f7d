package cluster

import (
	"fmt"
	"os"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// writeKubeconfig writes a kubeconfig for the client certificate certName,
// with the CA and the client's certificate and key embedded, so the file
// stands alone.
func (p *pki) writeKubeconfig(path, server, user, certName string) error {
	cert, err := os.ReadFile(p.cert(certName))
	if err != nil {
		return fmt.Errorf("kubeconfig %s: %w", path, err)
	}
	key, err := os.ReadFile(p.key(certName))
	if err != nil {
		return fmt.Errorf("kubeconfig %s: %w", path, err)
	}
	const name = "fedlet"
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[name] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: p.caPEM}
	cfg.AuthInfos[user] = &clientcmdapi.AuthInfo{ClientCertificateData: cert, ClientKeyData: key}
	cfg.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: user}
	cfg.CurrentContext = name
	data, err := clientcmd.Write(*cfg)
	if err != nil {
		return fmt.Errorf("kubeconfig %s: %w", path, err)
	}
	return writeFile(path, data, 0o600)
}

// kubeconfigs writes the admin kubeconfig and the internal ones of the
// scheduler, the controller manager, the agent, kube-proxy and CoreDNS. They are rewritten on
// every start: they are cheap, and the API server's port may have changed.
func (p *pki) kubeconfigs(paths Paths, apiServerPort int) error {
	server := fmt.Sprintf("https://127.0.0.1:%d", apiServerPort)
	for _, k := range []struct{ path, user, cert string }{
		{paths.Kubeconfig, "fedlet-admin", certAdmin},
		{p.kubeconfig("scheduler"), "system:kube-scheduler", certScheduler},
		{p.kubeconfig("controller-manager"), "system:kube-controller-manager", certControllerManager},
		{p.kubeconfig("agent"), "fedlet-agent", certAgent},
		{p.kubeconfig("kube-proxy"), "system:kube-proxy", certKubeProxy},
		{p.kubeconfig("coredns"), coreDNSUser, certCoreDNS},
	} {
		if err := p.writeKubeconfig(k.path, server, k.user, k.cert); err != nil {
			return err
		}
	}
	return nil
}
