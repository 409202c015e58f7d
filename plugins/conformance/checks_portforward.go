package conformance

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// Port forwarding: a TCP connection to a port of the pod, as `kubectl
// port-forward`. Every runtime plugin serves it, whoever gives pods their
// network.
var portForwardChecks = []Check{
	{
		Name: "portforward-pod-port",
		Rule: "PortForward connects to a TCP port on the loopback of the pod's own network namespace: two pods serving the same port each answer with their own page; data_done half-closes the connection, and the stream ends when the connection closes",
		run:  checkPortForwardPodPort,
	},
	{
		Name: "portforward-closed-port",
		Rule: "PortForward to a port nothing listens on fails with Unavailable, and the plugin keeps serving (same process)",
		run:  checkPortForwardClosedPort,
	},
}

// webPort is where the pods of these checks serve, on their loopback only.
const webPort = 8080

// webServer starts a container serving page at / on the pod's loopback,
// with the image's httpd.
func (p *probe) webServer(pod *runtimev1.PodRef, page string) {
	p.start(pod, "web", 0, fmt.Sprintf("mkdir -p /tmp/www && printf '%%s' '%s' > /tmp/www/index.html && exec httpd -f -p 127.0.0.1:%d -h /tmp/www", page, webPort))
}

// forward opens a PortForward to the pod's port, sends data, then
// data_done, and returns what the port sent until the stream ended, and the
// stream's error (nil when it ended cleanly).
func (p *probe) forward(pod *runtimev1.PodRef, port int32, data string) (string, error) {
	ctx, cancel := p.call()
	defer cancel()
	stream, err := p.rt().PortForward(ctx)
	if err != nil {
		return "", err
	}
	for _, req := range []*runtimev1.PortForwardRequest{
		{Request: &runtimev1.PortForwardRequest_Start{Start: &runtimev1.PortForwardStart{Node: p.node(), PodUid: pod.GetUid(), Port: port}}},
		{Request: &runtimev1.PortForwardRequest_Data{Data: []byte(data)}},
		{Request: &runtimev1.PortForwardRequest_DataDone{DataDone: true}},
	} {
		if err := stream.Send(req); err != nil && !errors.Is(err, io.EOF) {
			return "", err
		}
	}
	var out strings.Builder
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return out.String(), nil
		}
		if err != nil {
			return out.String(), err
		}
		out.Write(resp.GetData())
	}
}

// getPage fetches / from the pod's web server through PortForward, trying
// again while the server is not listening yet (Unavailable), and returns
// the whole HTTP response.
func (p *probe) getPage(pod *runtimev1.PodRef) string {
	deadline := time.Now().Add(p.suite.cfg.Timeout)
	for {
		out, err := p.forward(pod, webPort, "GET / HTTP/1.0\r\n\r\n")
		if err == nil {
			return out
		}
		if status.Code(err) != codes.Unavailable {
			p.Fatalf("PortForward to port %d of pod %s: %v (received %q)", webPort, pod.GetUid(), err, out)
		}
		if time.Now().After(deadline) {
			p.Fatalf("PortForward to port %d of pod %s: still %v after %v; the web server's log: %q",
				webPort, pod.GetUid(), err, p.suite.cfg.Timeout, p.allLogs(pod, "web"))
		}
		p.sleep(pollInterval)
	}
}

func checkPortForwardPodPort(p *probe) {
	pods := []*runtimev1.PodRef{p.podWithImage(), p.podWithImage()}
	for _, pod := range pods {
		p.webServer(pod, "page of "+pod.GetUid())
	}
	p.expectOwnPages(pods)
}

// expectOwnPages fetches / through PortForward from each pod, whose web
// server serves "page of UID", and wants each pod's own page.
func (p *probe) expectOwnPages(pods []*runtimev1.PodRef) {
	for _, pod := range pods {
		resp := p.getPage(pod)
		head, body, _ := strings.Cut(resp, "\r\n\r\n")
		if !strings.HasPrefix(head, "HTTP/1.") || !strings.Contains(strings.SplitN(head, "\r\n", 2)[0], " 200 ") {
			p.Errorf("GET / through PortForward to pod %s answered %q, want HTTP status 200", pod.GetUid(), resp)
			continue
		}
		if want := "page of " + pod.GetUid(); body != want {
			p.Errorf("GET / through PortForward to pod %s answered the page %q, want %q: the pod's own", pod.GetUid(), body, want)
		}
	}
}

func checkPortForwardClosedPort(p *probe) {
	pod := p.podWithImage()
	p.sleeper(pod, "quiet")
	node := p.node()
	p.expectRefused([]badCall{
		{fmt.Sprintf("PortForward to port %d of a running pod, where nothing listens", webPort+1), codes.Unavailable,
			func(ctx context.Context, rt runtimev1.RuntimeClient) error {
				return firstAnswer(ctx, rt.PortForward, &runtimev1.PortForwardRequest{Request: &runtimev1.PortForwardRequest_Start{
					Start: &runtimev1.PortForwardStart{Node: node, PodUid: pod.GetUid(), Port: webPort + 1},
				}})
			}},
	})
}
