package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// hostExecer runs exec probes as commands of the test's own host: a real
// process, ended by the probe's context as the runtime ends its exec.
type hostExecer struct{}

func (hostExecer) ExecSync(ctx context.Context, _ types.UID, _ string, cmd []string) (int32, string, error) {
	out, err := exec.CommandContext(ctx, cmd[0], cmd[1:]...).CombinedOutput()
	if ctx.Err() != nil {
		return 0, string(out), ctx.Err()
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return int32(exit.ExitCode()), string(out), nil
	}
	return 0, string(out), err
}

func target(ip string, ports ...corev1.ContainerPort) Target {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "uid-1"}}
	pod.Spec.Containers = []corev1.Container{{Name: "main", Ports: ports}}
	return Target{Pod: pod, Container: &pod.Spec.Containers[0], ContainerID: "c1", PodIP: ip}
}

func run(t *testing.T, p *Prober, h corev1.ProbeHandler, tg Target) Outcome {
	t.Helper()
	return p.Run(context.Background(), &corev1.Probe{ProbeHandler: h, TimeoutSeconds: 1}, tg)
}

func TestExecProbe(t *testing.T) {
	p := NewProber(hostExecer{})
	sh := func(script string) corev1.ProbeHandler {
		return corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"sh", "-c", script}}}
	}
	cases := []struct {
		script string
		want   Result
		msg    string
	}{
		{"echo fine", Success, "fine\n"},
		{"echo not yet; exit 1", Failure, "not yet\n"},
		{"echo to stderr >&2; exit 2", Failure, "to stderr\n"},
		{"exec sleep 5", Failure, `command "sh -c exec sleep 5" timed out`},
	}
	for _, c := range cases {
		o := run(t, p, sh(c.script), target(""))
		if o.Result != c.want || o.Message != c.msg {
			t.Errorf("%q: %v %q, want %v %q", c.script, o.Result, o.Message, c.want, c.msg)
		}
	}
	// A command that cannot be run at all is no verdict on the container.
	o := run(t, p, corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"/no/such/command"}}}, target(""))
	if o.Result != Unknown {
		t.Errorf("a command that cannot start: %v %q, want Unknown", o.Result, o.Message)
	}
}

func TestHTTPGetProbe(t *testing.T) {
	var seen http.Header
	var seenHost, seenQuery string
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "healthy") })
	mux.HandleFunc("/created", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusCreated) })
	mux.HandleFunc("/fail", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "sick", http.StatusInternalServerError) })
	mux.HandleFunc("/notfound", http.NotFound)
	mux.HandleFunc("/here", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/ok", http.StatusFound) })
	mux.HandleFunc("/here-to-fail", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/fail", http.StatusFound) })
	mux.HandleFunc("/loop", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/loop", http.StatusFound) })
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, strings.Repeat("x", 1<<20)) })
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		seen, seenHost, seenQuery = r.Header.Clone(), r.Host, r.URL.RawQuery
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	// A redirect to another host name of the same server: not followed.
	mux.HandleFunc("/elsewhere", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, fmt.Sprintf("http://localhost:%d/ok", port), http.StatusMovedPermanently)
	})

	p := NewProber(nil)
	get := func(path string) corev1.ProbeHandler {
		return corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intstr.FromInt(port)}}
	}
	tg := target("127.0.0.1")
	cases := []struct {
		path    string
		want    Result
		msg     string
		warning bool
	}{
		{"/ok", Success, "healthy", false},
		{"/created", Success, "", false},
		{"/fail", Failure, "HTTP probe failed with statuscode: 500", false},
		{"/notfound", Failure, "HTTP probe failed with statuscode: 404", false},
		{"/here", Success, "healthy", false},
		{"/here-to-fail", Failure, "HTTP probe failed with statuscode: 500", false},
		{"/elsewhere", Success, "Probe terminated redirects, Response body: ", true},
	}
	for _, c := range cases {
		o := run(t, p, get(c.path), tg)
		if o.Result != c.want || !strings.HasPrefix(o.Message, c.msg) || c.msg == "" && o.Message != "" || o.Warning != c.warning {
			t.Errorf("GET %s: %+v, want %v %q warning=%v", c.path, o, c.want, c.msg, c.warning)
		}
	}
	if o := run(t, p, get("/loop"), tg); o.Result != Failure || !strings.Contains(o.Message, "stopped after 10 redirects") {
		t.Errorf("redirect loop: %+v", o)
	}
	if o := run(t, p, get("/big"), tg); o.Result != Success || len(o.Message) != bodyLimit {
		t.Errorf("a large body: %v with %d bytes kept, want success with %d", o.Result, len(o.Message), bodyLimit)
	}
	if o := run(t, p, get("/slow"), tg); o.Result != Failure || !strings.Contains(o.Message, "deadline exceeded") {
		t.Errorf("no answer within the timeout: %+v", o)
	}

	// Port by name, path with a query, the kubelet's default headers and the probe's own.
	named := target("127.0.0.1", corev1.ContainerPort{Name: "web", ContainerPort: int32(port)})
	h := corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/echo?deep=1", Port: intstr.FromString("web"),
		HTTPHeaders: []corev1.HTTPHeader{{Name: "X-Probe", Value: "yes"}, {Name: "Host", Value: "app.example"}}}}
	if o := run(t, p, h, named); o.Result != Success {
		t.Fatalf("GET by port name: %+v", o)
	}
	if ua := seen.Get("User-Agent"); ua != "kube-probe/1.37" || seen.Get("Accept") != "*/*" || seen.Get("X-Probe") != "yes" || seenHost != "app.example" || seenQuery != "deep=1" {
		t.Errorf("request seen: headers %v, host %q, query %q", seen, seenHost, seenQuery)
	}
	h.HTTPGet.HTTPHeaders = []corev1.HTTPHeader{{Name: "User-Agent", Value: "mine"}, {Name: "Accept", Value: ""}}
	run(t, p, h, named)
	if seen.Get("User-Agent") != "mine" || len(seen.Values("Accept")) != 0 {
		t.Errorf("the probe's own User-Agent and an empty Accept: %v", seen)
	}

	// HTTPS with the pod's own certificate, which is not checked.
	tlsSrv := httptest.NewTLSServer(mux)
	defer tlsSrv.Close()
	tlsPort := tlsSrv.Listener.Addr().(*net.TCPAddr).Port
	if o := run(t, p, corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Scheme: corev1.URISchemeHTTPS, Path: "/ok", Port: intstr.FromInt(tlsPort)}}, tg); o.Result != Success {
		t.Errorf("HTTPS: %+v", o)
	}

	// What cannot be run is Unknown: no pod IP yet, a port name the container lacks.
	if o := run(t, p, get("/ok"), target("")); o.Result != Unknown {
		t.Errorf("without a pod IP: %+v", o)
	}
	if o := run(t, p, corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Port: intstr.FromString("nope")}}, tg); o.Result != Unknown || !strings.Contains(o.Message, `"nope"`) {
		t.Errorf("unknown port name: %+v", o)
	}
	// A named host wins over the pod's IP.
	if o := run(t, p, corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Host: "127.0.0.1", Path: "/ok", Port: intstr.FromInt(port)}}, target("")); o.Result != Success {
		t.Errorf("named host: %+v", o)
	}
}

// closedPort returns a loopback port nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	return port
}

func TestTCPSocketProbe(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	p := NewProber(nil)
	port := l.Addr().(*net.TCPAddr).Port
	if o := run(t, p, corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt(port)}}, target("127.0.0.1")); o.Result != Success {
		t.Errorf("open port: %+v", o)
	}
	named := target("127.0.0.1", corev1.ContainerPort{Name: "svc", ContainerPort: int32(port)})
	if o := run(t, p, corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromString("svc")}}, named); o.Result != Success {
		t.Errorf("open port by name: %+v", o)
	}
	closed := closedPort(t)
	if o := run(t, p, corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt(closed)}}, target("127.0.0.1")); o.Result != Failure || !strings.Contains(o.Message, "connection refused") {
		t.Errorf("closed port: %+v", o)
	}
}

func TestGRPCProbe(t *testing.T) {
	serve := func(withHealth bool) (int, *health.Server) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		s := grpc.NewServer()
		var hs *health.Server
		if withHealth {
			hs = health.NewServer()
			healthpb.RegisterHealthServer(s, hs)
		}
		go func() { _ = s.Serve(l) }()
		t.Cleanup(s.Stop)
		return l.Addr().(*net.TCPAddr).Port, hs
	}
	port, hs := serve(true)
	hs.SetServingStatus("up", healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus("down", healthpb.HealthCheckResponse_NOT_SERVING)
	bare, _ := serve(false)

	p := NewProber(nil)
	check := func(port int, service *string) Outcome {
		return run(t, p, corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: int32(port), Service: service}}, target("127.0.0.1"))
	}
	if o := check(port, nil); o.Result != Success {
		t.Errorf("the server's overall health: %+v", o)
	}
	if o := check(port, ptr.To("up")); o.Result != Success {
		t.Errorf("a serving service: %+v", o)
	}
	if o := check(port, ptr.To("down")); o.Result != Failure || o.Message != `service unhealthy (responded with "NOT_SERVING")` {
		t.Errorf("a service not serving: %+v", o)
	}
	if o := check(port, ptr.To("unknown")); o.Result != Failure || !strings.Contains(o.Message, "NotFound") {
		t.Errorf("an unknown service: %+v", o)
	}
	if o := check(bare, nil); o.Result != Failure || !strings.HasPrefix(o.Message, "error: this server does not implement the grpc health protocol") {
		t.Errorf("a server without the health service: %+v", o)
	}
	if o := check(closedPort(t), nil); o.Result != Failure || !strings.Contains(o.Message, "connection refused") {
		t.Errorf("a closed port: %+v", o)
	}
}

func TestResolvePort(t *testing.T) {
	ctr := &corev1.Container{Name: "c", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}}
	for in, want := range map[string]int{"http": 8080, "9090": 9090} {
		if got, err := resolvePort(intstr.FromString(in), ctr); err != nil || got != want {
			t.Errorf("%q: %d, %v", in, got, err)
		}
	}
	if got, err := resolvePort(intstr.FromInt(81), ctr); err != nil || got != 81 {
		t.Errorf("81: %d, %v", got, err)
	}
	for _, bad := range []intstr.IntOrString{intstr.FromString("grpc"), intstr.FromInt(0), intstr.FromInt(70000)} {
		if _, err := resolvePort(bad, ctr); err == nil {
			t.Errorf("%s: no error", bad.String())
		}
	}
}
