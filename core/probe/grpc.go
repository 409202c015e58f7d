package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// grpcProbe calls grpc.health.v1.Health/Check for the service, in
// plaintext, as the kubelet does: SERVING is a success; any other status,
// an error or no answer in time is a failure.
func grpcProbe(ctx context.Context, host string, port int, service string, timeout time.Duration) Outcome {
	if host == "" {
		return unknown("%v", errNoIP)
	}
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	conn, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithUserAgent(userAgent),
		grpc.WithNoProxy())
	if err != nil {
		return Outcome{Result: Failure, Message: fmt.Sprintf("error: failed to connect service at %q: %v", addr, err)}
	}
	defer func() { _ = conn.Close() }()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: service})
	if err != nil {
		st, _ := status.FromError(err)
		switch {
		case st.Code() == codes.Unimplemented:
			return Outcome{Result: Failure, Message: "error: this server does not implement the grpc health protocol (grpc.health.v1.Health): " + st.Message()}
		case st.Code() == codes.DeadlineExceeded || errors.Is(ctx.Err(), context.DeadlineExceeded):
			return Outcome{Result: Failure, Message: fmt.Sprintf("timeout: health rpc did not complete within %v", timeout)}
		}
		return Outcome{Result: Failure, Message: fmt.Sprintf("error: health rpc probe failed: %v", err)}
	}
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		return Outcome{Result: Failure, Message: fmt.Sprintf("service unhealthy (responded with %q)", resp.GetStatus())}
	}
	return Outcome{Result: Success}
}
