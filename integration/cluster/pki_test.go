package cluster

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
)

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatalf("%s: no PEM", path)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func TestPKIIssuesEveryCertificateFromOneCA(t *testing.T) {
	dir := t.TempDir()
	specs := clusterCerts("fedlet-node", net.ParseIP("192.0.2.7"))
	p, err := ensurePKI(dir, specs)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range specs {
		cert := readCert(t, p.cert(s.name))
		usage := x509.ExtKeyUsageClientAuth
		if s.server {
			usage = x509.ExtKeyUsageServerAuth
		}
		ca, other := p.ca, p.frontProxyCA
		if s.frontProxy {
			ca, other = other, ca
		}
		if _, err := cert.Verify(x509.VerifyOptions{Roots: ca.pool, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
			t.Errorf("%s does not verify against %s for %v: %v", s.name, ca.name, usage, err)
		}
		if _, err := cert.Verify(x509.VerifyOptions{Roots: other.pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err == nil {
			t.Errorf("%s verifies against %s too", s.name, other.name)
		}
		if _, _, err := loadPair(p.cert(s.name), p.key(s.name)); err != nil {
			t.Errorf("%s: %v", s.name, err)
		}
		if fi, err := os.Stat(p.key(s.name)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s key mode: %v %v", s.name, fi.Mode(), err)
		}
	}

	api := readCert(t, p.cert(certAPIServer))
	for _, host := range []string{"127.0.0.1", "10.0.0.1", "localhost", "kubernetes", "kubernetes.default",
		"kubernetes.default.svc", "kubernetes.default.svc.cluster.local"} {
		if err := api.VerifyHostname(host); err != nil {
			t.Errorf("API server certificate: %v", err)
		}
	}
	node := readCert(t, p.cert(certNodeAPI))
	for _, host := range []string{"127.0.0.1", "localhost"} {
		if err := node.VerifyHostname(host); err != nil {
			t.Errorf("node API certificate: %v", err)
		}
	}

	subjects := map[string][2]any{
		certAdmin:             {"fedlet-admin", []string{"system:masters"}},
		certKubeletClient:     {"kube-apiserver-kubelet-client", []string{"system:masters"}},
		certScheduler:         {"system:kube-scheduler", []string(nil)},
		certControllerManager: {"system:kube-controller-manager", []string(nil)},
		certAgent:             {"fedlet-agent", []string{"fedlet:agents"}},
	}
	for name, want := range subjects {
		cert := readCert(t, p.cert(name))
		if cert.Subject.CommonName != want[0].(string) || !slices.Equal(cert.Subject.Organization, want[1].([]string)) {
			t.Errorf("%s subject = %v, want CN=%v O=%v", name, cert.Subject, want[0], want[1])
		}
	}

	if _, err := readPrivateKey(p.saKey()); err != nil {
		t.Errorf("service account key: %v", err)
	}
	pub, err := os.ReadFile(p.saPub())
	if err != nil {
		t.Fatal(err)
	}
	if block, _ := pem.Decode(pub); block == nil || block.Type != "PUBLIC KEY" {
		t.Errorf("sa.pub is not a PEM public key")
	}
}

func snapshotDir(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		files[e.Name()] = data
	}
	return files
}

func TestPKIIsReusedAndRepaired(t *testing.T) {
	dir := t.TempDir()
	specs := clusterCerts("fedlet-node", net.ParseIP("192.0.2.7"))
	if _, err := ensurePKI(dir, specs); err != nil {
		t.Fatal(err)
	}
	first := snapshotDir(t, dir)

	// A second run changes nothing.
	if _, err := ensurePKI(dir, specs); err != nil {
		t.Fatal(err)
	}
	second := snapshotDir(t, dir)
	if len(first) != len(second) {
		t.Fatalf("files: %d then %d", len(first), len(second))
	}
	for name, data := range first {
		if !bytes.Equal(data, second[name]) {
			t.Errorf("%s changed on the second run", name)
		}
	}

	// A lost key is issued again, with its certificate; nothing else changes.
	if err := os.Remove(filepath.Join(dir, "agent.key")); err != nil {
		t.Fatal(err)
	}
	p, err := ensurePKI(dir, specs)
	if err != nil {
		t.Fatal(err)
	}
	third := snapshotDir(t, dir)
	for name, data := range first {
		changed := !bytes.Equal(data, third[name])
		if want := name == "agent.crt" || name == "agent.key"; changed != want {
			t.Errorf("%s changed = %v, want %v", name, changed, want)
		}
	}
	if _, _, err := loadPair(p.cert(certAgent), p.key(certAgent)); err != nil {
		t.Error(err)
	}
}

func TestKubeconfigsStandAlone(t *testing.T) {
	dataDir := t.TempDir()
	paths := PathsFor(dataDir)
	p, err := ensurePKI(paths.PKI, clusterCerts("fedlet-node", net.ParseIP("192.0.2.7")))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.kubeconfigs(paths, 16443); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{paths.Kubeconfig, p.kubeconfig("scheduler"), p.kubeconfig("controller-manager"), p.kubeconfig("agent")} {
		cfg, err := clientcmd.BuildConfigFromFlags("", path)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if cfg.Host != "https://127.0.0.1:16443" {
			t.Errorf("%s: host %s", path, cfg.Host)
		}
		if !bytes.Equal(cfg.CAData, p.caPEM) || len(cfg.CertData) == 0 || len(cfg.KeyData) == 0 {
			t.Errorf("%s: CA, certificate or key not embedded", path)
		}
	}
	agent, err := clientcmd.BuildConfigFromFlags("", p.kubeconfig("agent"))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(agent.CertData)
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil || cert.Subject.CommonName != "fedlet-agent" {
		t.Errorf("agent kubeconfig holds %v (%v)", cert.Subject, err)
	}
}
