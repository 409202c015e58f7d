package probe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// httpGet sends the probe's GET and judges the answer as the kubelet does:
// 2xx is a success; a 3xx is followed while it stays on the same host, and
// one that leaves the host is a success with a warning; anything else, or
// no answer in time, is a failure. At most bodyLimit bytes of the body are
// read.
func (p *Prober) httpGet(ctx context.Context, a *corev1.HTTPGetAction, t Target) Outcome {
	req, err := newProbeRequest(ctx, a, t)
	if err != nil {
		return unknown("%v", err)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return Outcome{Result: Failure, Message: err.Error()}
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, bodyLimit))
	if err != nil {
		return Outcome{Result: Failure, Message: fmt.Sprintf("read the response of %s: %v", req.URL, err)}
	}
	switch {
	case resp.StatusCode >= http.StatusOK && resp.StatusCode < http.StatusMultipleChoices:
		return Outcome{Result: Success, Message: string(body)}
	case resp.StatusCode >= http.StatusMultipleChoices && resp.StatusCode < http.StatusBadRequest:
		return Outcome{Result: Success, Warning: true, Message: "Probe terminated redirects, Response body: " + string(body)}
	}
	return Outcome{Result: Failure, Message: fmt.Sprintf("HTTP probe failed with statuscode: %d", resp.StatusCode)}
}

// newProbeRequest builds the GET: scheme, host (the pod's IP unless
// named), port by number or name, path (which may carry a query), and the
// probe's headers over the kubelet's defaults (User-Agent kube-probe/X.Y,
// Accept */*; an empty Accept removes it; Host sets the request's host).
func newProbeRequest(ctx context.Context, a *corev1.HTTPGetAction, t Target) (*http.Request, error) {
	host := hostOf(a.Host, t)
	if host == "" {
		return nil, errNoIP
	}
	port, err := resolvePort(a.Port, t.Container)
	if err != nil {
		return nil, err
	}
	scheme := strings.ToLower(string(a.Scheme))
	if scheme == "" {
		scheme = "http"
	}
	u, err := url.Parse(a.Path)
	if err != nil {
		u = &url.URL{Path: a.Path}
	}
	u.Scheme, u.Host = scheme, net.JoinHostPort(host, strconv.Itoa(port))
	if u.Path == "" {
		u.Path = "/"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("build the probe's request: %w", err)
	}
	for _, h := range a.HTTPHeaders {
		req.Header.Add(h.Name, h.Value)
	}
	if _, ok := req.Header["User-Agent"]; !ok {
		req.Header.Set("User-Agent", userAgent)
	}
	if _, ok := req.Header["Accept"]; !ok {
		req.Header.Set("Accept", "*/*")
	} else if req.Header.Get("Accept") == "" {
		req.Header.Del("Accept")
	}
	if h := req.Header.Get("Host"); h != "" {
		req.Host = h
		req.Header.Del("Host")
	}
	return req, nil
}

// sameHostRedirects follows redirects on the probed host only, at most 10;
// a redirect elsewhere ends the probe with that redirect's response.
func sameHostRedirects(req *http.Request, via []*http.Request) error {
	if req.URL.Hostname() != via[0].URL.Hostname() {
		return http.ErrUseLastResponse
	}
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	return nil
}
