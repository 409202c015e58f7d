package kubernetes

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery"
)

// How often the member's API server is probed, and how long a probe may
// take. GetNode only reads the last result.
const (
	probeInterval = 10 * time.Second
	probeTimeout  = 5 * time.Second
)

// Reasons GetNode gives for a member it cannot use.
const (
	ReasonUnreachable  = "MemberUnreachable"
	ReasonUnauthorized = "MemberUnauthorized"
	ReasonForbidden    = "MemberForbidden"
	// ReasonUntrusted: the member's serving certificate is not signed by
	// the kubeconfig's CA.
	ReasonUntrusted = "MemberUntrusted"
	// ReasonSyncing: the member answers, but its nodes and pods are not
	// listed yet.
	ReasonSyncing = "MemberSyncing"
	ReasonReady   = "MemberReady"
)

// health is the last probe's result.
type health struct {
	host string // the API server's URL, for messages

	mu      sync.Mutex
	first   chan struct{} // closed by the first probe's result
	probed  bool
	version string // the member's gitVersion
	reason  string // empty when the probe passed
	message string
}

// waitProbed waits for the first probe's result, or for ctx to end.
func (h *health) waitProbed(ctx context.Context) {
	select {
	case <-h.first:
	case <-ctx.Done():
	}
}

func (h *health) get() (probed bool, version, reason, message string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.probed, h.version, h.reason, h.message
}

func (h *health) set(version, reason, message string) (changed bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	changed = !h.probed || h.reason != reason
	if !h.probed {
		close(h.first)
	}
	h.probed = true
	if version != "" {
		h.version = version
	}
	h.reason, h.message = reason, message
	return changed
}

// probeLoop probes at once, then every probeInterval and whenever an
// informer fails, until ctx ends.
func (m *member) probeLoop(ctx context.Context) {
	t := time.NewTicker(probeInterval)
	defer t.Stop()
	for {
		m.probe(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-m.kickHealth:
		}
	}
}

// probe asks the member's version and lists one node and one pod: what the
// informers need. Each of the three failures has its reason.
func (m *member) probe(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	version, err := discovery.ToServerVersionInterfaceWithContext(m.client.Discovery()).ServerVersionWithContext(ctx)
	gitVersion := ""
	if err == nil {
		gitVersion = version.GitVersion
		_, err = m.client.CoreV1().Nodes().List(ctx, metav1.ListOptions{Limit: 1})
	}
	if err == nil {
		_, err = m.client.CoreV1().Pods(metav1.NamespaceAll).List(ctx, metav1.ListOptions{Limit: 1})
	}
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return // stopping
	}
	reason, message := m.classify(err)
	if m.health.set(gitVersion, reason, message) {
		if reason == "" {
			m.logger.Info("member API server answers", "host", m.health.host, "version", gitVersion)
		} else {
			m.logger.Warn("member API server cannot be used", "reason", reason, "message", message)
		}
	}
}

// classify says why err makes the member unusable; "" for nil.
func (m *member) classify(err error) (reason, message string) {
	switch {
	case err == nil:
		return "", ""
	case apierrors.IsUnauthorized(err):
		return ReasonUnauthorized, fmt.Sprintf("the member API server at %s refuses the credentials of %s: %v", m.health.host, m.cfg.credentials(), err)
	case apierrors.IsForbidden(err):
		return ReasonForbidden, fmt.Sprintf("the credentials of %s may not read the member's nodes and pods: %v", m.cfg.credentials(), err)
	case errors.As(err, new(*tls.CertificateVerificationError)) || errors.As(err, new(x509.UnknownAuthorityError)):
		return ReasonUntrusted, fmt.Sprintf("the member API server at %s presents a certificate the CA of %s does not sign: %v", m.health.host, m.cfg.credentials(), err)
	}
	return ReasonUnreachable, fmt.Sprintf("cannot reach the member API server at %s (kubeconfig %s): %v", m.health.host, m.cfg.credentials(), err)
}
