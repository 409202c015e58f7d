package probe

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"time"

	corev1 "k8s.io/api/core/v1"
)

const (
	// maxRetries is how many times a probe that could not be run is tried
	// again within one period, as the kubelet does.
	maxRetries = 3
	// bodyLimit bounds what is read of an HTTP probe's response, as the
	// kubelet bounds it.
	bodyLimit = 10 << 10
)

// Prober runs the four kinds of handler. Exec probes go through the
// runtime (Execer); the network probes connect from the agent's host.
type Prober struct {
	exec   Execer
	client *http.Client
}

// NewProber returns a Prober whose exec probes run through exec.
func NewProber(exec Execer) *Prober {
	transport := &http.Transport{
		// A pod serves its own certificate: the kubelet does not check it either.
		TLSClientConfig:    &tls.Config{InsecureSkipVerify: true}, //nolint:gosec
		DisableKeepAlives:  true,
		DisableCompression: true,
		Proxy:              nil, // probes never go through the agent's proxy
	}
	return &Prober{exec: exec, client: &http.Client{Transport: transport, CheckRedirect: sameHostRedirects}}
}

// Run runs the probe once against the container attempt, within the
// probe's timeoutSeconds. A run that could not be done (Unknown) is tried
// again, up to maxRetries times.
func (p *Prober) Run(ctx context.Context, pr *corev1.Probe, t Target) Outcome {
	var o Outcome
	for range maxRetries {
		o = p.runOnce(ctx, pr, t)
		if o.Result != Unknown || ctx.Err() != nil {
			return o
		}
	}
	return o
}

func (p *Prober) runOnce(ctx context.Context, pr *corev1.Probe, t Target) Outcome {
	timeout := timeoutOf(pr)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	h := &pr.ProbeHandler
	switch {
	case h.Exec != nil:
		return execProbe(ctx, p.exec, t, h.Exec.Command)
	case h.HTTPGet != nil:
		return p.httpGet(ctx, h.HTTPGet, t)
	case h.TCPSocket != nil:
		return tcpProbe(ctx, h.TCPSocket, t)
	case h.GRPC != nil:
		service := ""
		if h.GRPC.Service != nil {
			service = *h.GRPC.Service
		}
		return grpcProbe(ctx, hostOf("", t), int(h.GRPC.Port), service, timeout)
	}
	return Outcome{Result: Unknown, Message: "missing probe handler"}
}

// timeoutOf is the probe's timeoutSeconds; the API server defaults it to 1.
func timeoutOf(pr *corev1.Probe) time.Duration {
	return seconds(pr.TimeoutSeconds, 1)
}

func seconds(n, def int32) time.Duration {
	if n <= 0 {
		n = def
	}
	return time.Duration(n) * time.Second
}

// hostOf is where a network probe connects: the host it names, or else
// the pod's IP.
func hostOf(named string, t Target) string {
	if named != "" {
		return named
	}
	return t.PodIP
}

// errNoIP is the reason a network probe cannot run before the pod has an
// address.
var errNoIP = errors.New("the pod has no IP address yet")

func unknown(format string, args ...any) Outcome {
	return Outcome{Result: Unknown, Message: fmt.Sprintf(format, args...)}
}
