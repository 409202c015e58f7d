package cluster

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

const (
	caValidity   = 10 * 365 * 24 * time.Hour
	leafValidity = 2 * 365 * 24 * time.Hour
	// A certificate closer than this to its end is issued again.
	renewBefore = 30 * 24 * time.Hour
)

// certSpec is one certificate the cluster needs, issued by its CA.
type certSpec struct {
	name   string // base name of the .crt and .key files
	cn     string
	orgs   []string
	server bool // serving certificate; otherwise a client certificate
	dns    []string
	ips    []net.IP
	// frontProxy: issued by the front-proxy CA rather than the cluster CA.
	frontProxy bool
}

var loopbackIP = net.ParseIP("127.0.0.1")

// Certificates of the cluster, by the name of their files.
const (
	certAPIServer         = "apiserver"
	certKubeletClient     = "apiserver-kubelet-client"
	certAdmin             = "admin"
	certScheduler         = "scheduler"
	certControllerManager = "controller-manager"
	certAgent             = "agent"
	certNodeAPI           = "node-api"
	certSchedulerServing  = "scheduler-serving"
	certCMServing         = "controller-manager-serving"
	certFrontProxyClient  = "front-proxy-client"
	certKubeProxy         = "kube-proxy"
	certCoreDNS           = "coredns"
)

func clusterCerts(nodeName string, hostIP net.IP) []certSpec {
	loopback := []net.IP{loopbackIP}
	return []certSpec{
		{name: certAPIServer, cn: "kube-apiserver", server: true,
			dns: []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
			ips: []net.IP{loopbackIP, net.ParseIP("10.0.0.1"), hostIP}},
		{name: certKubeletClient, cn: "kube-apiserver-kubelet-client", orgs: []string{"system:masters"}},
		{name: certAdmin, cn: "fedlet-admin", orgs: []string{"system:masters"}},
		{name: certScheduler, cn: "system:kube-scheduler"},
		{name: certControllerManager, cn: "system:kube-controller-manager"},
		// The user upstream's bootstrap policy binds to system:node-proxier.
		{name: certKubeProxy, cn: "system:kube-proxy"},
		{name: certCoreDNS, cn: coreDNSUser},
		{name: certAgent, cn: "fedlet-agent", orgs: []string{"fedlet:agents"}},
		// The API server reaches the node API at the node's InternalIP.
		{name: certNodeAPI, cn: nodeName, server: true, dns: []string{"localhost"}, ips: []net.IP{loopbackIP, hostIP}},
		{name: certSchedulerServing, cn: "kube-scheduler", server: true, dns: []string{"localhost"}, ips: loopback},
		{name: certCMServing, cn: "kube-controller-manager", server: true, dns: []string{"localhost"}, ips: loopback},
		// The API server's identity towards aggregated API servers.
		{name: certFrontProxyClient, cn: "front-proxy-client", frontProxy: true},
	}
}

// authority is a certificate authority of the cluster.
type authority struct {
	name string // base name of its files
	cert *x509.Certificate
	key  crypto.Signer
	pem  []byte
	pool *x509.CertPool
}

// pki is the cluster's certificate authorities and the files they issued:
// the cluster CA, which every client and server trusts, and the front-proxy
// CA, which only vouches for the API server towards aggregated API servers
// (a separate CA, since whatever it signs may claim any user in headers).
type pki struct {
	dir          string
	ca           *authority
	frontProxyCA *authority
	caPEM        []byte         // the cluster CA's certificate
	caPool       *x509.CertPool // the cluster CA alone
}

func (p *pki) caCert() string             { return p.cert(p.ca.name) }
func (p *pki) caKeyFile() string          { return p.key(p.ca.name) }
func (p *pki) frontProxyCACert() string   { return p.cert(p.frontProxyCA.name) }
func (p *pki) cert(name string) string    { return filepath.Join(p.dir, name+".crt") }
func (p *pki) key(name string) string     { return filepath.Join(p.dir, name+".key") }
func (p *pki) saKey() string              { return filepath.Join(p.dir, "sa.key") }
func (p *pki) saPub() string              { return filepath.Join(p.dir, "sa.pub") }
func (p *pki) kubeconfig(n string) string { return filepath.Join(p.dir, n+".kubeconfig") }

// ensurePKI loads the CA and certificates under dir, and issues whatever is
// missing, unreadable, not signed by the CA or about to expire. A second run
// on the same directory issues nothing.
func ensurePKI(dir string, specs []certSpec) (*pki, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create pki directory: %w", err)
	}
	p := &pki{dir: dir}
	var err error
	if p.ca, err = p.loadOrCreateCA("ca", "fedlet-ca"); err != nil {
		return nil, err
	}
	if p.frontProxyCA, err = p.loadOrCreateCA("front-proxy-ca", "fedlet-front-proxy-ca"); err != nil {
		return nil, err
	}
	p.caPEM, p.caPool = p.ca.pem, p.ca.pool
	for _, s := range specs {
		ca := p.ca
		if s.frontProxy {
			ca = p.frontProxyCA
		}
		if p.certValid(s, ca) {
			continue
		}
		if err := p.issue(s, ca); err != nil {
			return nil, fmt.Errorf("issue certificate %s: %w", s.name, err)
		}
	}
	if err := p.ensureServiceAccountKey(); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *pki) loadOrCreateCA(name, cn string) (*authority, error) {
	cert, key, err := loadPair(p.cert(name), p.key(name))
	if err != nil || !cert.IsCA || time.Until(cert.NotAfter) < renewBefore {
		// A new CA invalidates every certificate issued by the old one; they
		// fail certValid and are issued again.
		cert, key, err = createCA(cn)
		if err != nil {
			return nil, fmt.Errorf("create %s: %w", name, err)
		}
		if err := writePair(p.cert(name), p.key(name), cert, key); err != nil {
			return nil, fmt.Errorf("write %s: %w", name, err)
		}
	}
	a := &authority{name: name, cert: cert, key: key, pool: x509.NewCertPool()}
	a.pem = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
	a.pool.AddCert(cert)
	return a, nil
}

func createCA(cn string) (*x509.Certificate, crypto.Signer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := newSerial()
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return cert, key, err
}

// certValid says whether the files of s exist, match each other, are signed
// by ca for the right use, and are not about to expire.
func (p *pki) certValid(s certSpec, ca *authority) bool {
	cert, _, err := loadPair(p.cert(s.name), p.key(s.name))
	if err != nil || time.Until(cert.NotAfter) < renewBefore {
		return false
	}
	usage := x509.ExtKeyUsageClientAuth
	if s.server {
		usage = x509.ExtKeyUsageServerAuth
	}
	_, err = cert.Verify(x509.VerifyOptions{Roots: ca.pool, KeyUsages: []x509.ExtKeyUsage{usage}})
	if err != nil {
		return false
	}
	// A server's names may have changed (the machine's address): every one
	// must be in the certificate.
	for _, ip := range s.ips {
		if cert.VerifyHostname(ip.String()) != nil {
			return false
		}
	}
	for _, name := range s.dns {
		if cert.VerifyHostname(name) != nil {
			return false
		}
	}
	return true
}

func (p *pki) issue(s certSpec, ca *authority) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	serial, err := newSerial()
	if err != nil {
		return err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: s.cn, Organization: s.orgs},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(leafValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		DNSNames:     s.dns,
		IPAddresses:  s.ips,
	}
	if s.server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		return err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return err
	}
	return writePair(p.cert(s.name), p.key(s.name), cert, key)
}

// ensureServiceAccountKey keeps the RSA key pair that signs and verifies
// service account tokens. It is never replaced: replacing it would
// invalidate every token already handed out.
func (p *pki) ensureServiceAccountKey() error {
	if _, err := readPrivateKey(p.saKey()); err == nil {
		if _, err := os.Stat(p.saPub()); err == nil {
			return nil
		}
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return fmt.Errorf("generate service account key: %w", err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return fmt.Errorf("encode service account public key: %w", err)
	}
	if err := writeFile(p.saKey(), pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600); err != nil {
		return err
	}
	return writeFile(p.saPub(), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o644)
}

func newSerial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
}

func writePair(certFile, keyFile string, cert *x509.Certificate, key crypto.Signer) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("encode key: %w", err)
	}
	// The key first: a certificate without its key is never left behind.
	if err := writeFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return err
	}
	return writeFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o644)
}

// loadPair reads a certificate and its key, and checks that they belong together.
func loadPair(certFile, keyFile string) (*x509.Certificate, crypto.Signer, error) {
	data, err := os.ReadFile(certFile)
	if err != nil {
		return nil, nil, err
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, nil, fmt.Errorf("%s: no PEM certificate", certFile)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", certFile, err)
	}
	key, err := readPrivateKey(keyFile)
	if err != nil {
		return nil, nil, err
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return nil, nil, fmt.Errorf("%s does not belong to %s", keyFile, certFile)
	}
	return cert, key, nil
}

func readPrivateKey(path string) (crypto.Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%s: no PEM key", path)
	}
	var key any
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		err = fmt.Errorf("unknown PEM block %q", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%s: not a signing key", path)
	}
	return signer, nil
}

// writeFile replaces path atomically, so that a crash never leaves half a key.
func writeFile(path string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr, os.Chmod(tmp.Name(), perm)); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
