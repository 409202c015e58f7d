package probe

import (
	"context"
	"net"
	"strconv"

	corev1 "k8s.io/api/core/v1"
)

// tcpProbe succeeds when a TCP connection to the port opens in time; it
// is closed at once, nothing is sent.
func tcpProbe(ctx context.Context, a *corev1.TCPSocketAction, t Target) Outcome {
	host := hostOf(a.Host, t)
	if host == "" {
		return unknown("%v", errNoIP)
	}
	port, err := resolvePort(a.Port, t.Container)
	if err != nil {
		return unknown("%v", err)
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return Outcome{Result: Failure, Message: err.Error()}
	}
	_ = conn.Close()
	return Outcome{Result: Success}
}
