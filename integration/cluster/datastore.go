package cluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// startDatastore starts kine or etcd on loopback and waits until it serves.
// It returns the URL the API server is given with --etcd-servers.
func (c *Cluster) startDatastore(ctx context.Context) (string, error) {
	port := c.opts.Ports.Datastore
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	var (
		ch  *child
		err error
	)
	switch c.opts.Datastore {
	case DatastoreEtcd:
		ch, err = c.startEtcd(port)
	default:
		ch, err = c.startKine(port)
	}
	if err != nil {
		return "", err
	}
	took, err := waitReady(ctx, ch, time.Minute, func(ctx context.Context) error {
		return grpcServing(ctx, fmt.Sprintf("127.0.0.1:%d", port))
	})
	if err != nil {
		return "", err
	}
	c.progress("%s ready in %.1fs", ch.name, took.Seconds())
	return url, nil
}

// startKine runs kine on its own default SQLite endpoint. Its working
// directory is DIR/kine, so the database is DIR/kine/db/state.db. kine's
// default DSN carries the busy timeout and immediate transactions without
// which SQLite lost concurrent writes (see FACTS.md), so no DSN is given.
func (c *Cluster) startKine(port int) (*child, error) {
	if err := os.MkdirAll(c.paths.Kine, 0o700); err != nil {
		return nil, fmt.Errorf("create kine directory: %w", err)
	}
	c.progress("starting kine (SQLite in %s)…", filepath.Join(c.paths.Kine, "db", "state.db"))
	return c.start("kine", []string{
		"--listen-address", "127.0.0.1:" + strconv.Itoa(port),
		// Its default is :8080 on every interface.
		"--metrics-bind-address", "0",
	}, startOptions{
		dir: c.paths.Kine,
		// kine reads its flags from KINE_* variables too; none may change
		// the endpoint behind our back.
		dropEnv: []string{"KINE_"},
	})
}

// startEtcd runs a one-member etcd with its data in DIR/etcd, on loopback.
func (c *Cluster) startEtcd(port int) (*child, error) {
	if err := os.MkdirAll(c.paths.Etcd, 0o700); err != nil {
		return nil, fmt.Errorf("create etcd directory: %w", err)
	}
	client := fmt.Sprintf("http://127.0.0.1:%d", port)
	peer := fmt.Sprintf("http://127.0.0.1:%d", c.opts.Ports.EtcdPeer)
	c.progress("starting etcd (data in %s)…", c.paths.Etcd)
	return c.start("etcd", []string{
		"--name", "fedlet",
		"--data-dir", c.paths.Etcd,
		"--listen-client-urls", client,
		"--advertise-client-urls", client,
		"--listen-peer-urls", peer,
		"--initial-advertise-peer-urls", peer,
		"--initial-cluster", "fedlet=" + peer,
	}, startOptions{dir: c.paths.Etcd})
}

// grpcServing asks the standard gRPC health service, which kine and etcd
// both serve on their client port, whether the server is up.
func grpcServing(ctx context.Context, addr string) error {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		return err
	}
	if resp.Status != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("health: %v", resp.Status)
	}
	return nil
}
