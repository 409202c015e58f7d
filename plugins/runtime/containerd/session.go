package containerd

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// session is the backend configured against one containerd: the connection,
// the configuration, and the goroutine following containerd's task events.
type session struct {
	cfg       Config
	nodes     map[string]bool // empty: any node
	logDriver string
	logger    *slog.Logger
	client    *client.Client

	locks        keyedLocks
	watch        *watchHub
	imageConfigs imageConfigs

	stopEvents context.CancelFunc
	eventsDone chan struct{}
}

func newSession(cfg Config, nodes []string, logDriver string, logger *slog.Logger) (*session, error) {
	// client.New does not dial: containerd may come up later.
	c, err := client.New(cfg.Address, client.WithDefaultNamespace(cfg.Namespace))
	if err != nil {
		return nil, fmt.Errorf("config field address: connect to containerd at %s: %w", cfg.Address, err)
	}
	s := &session{
		cfg:        cfg,
		nodes:      map[string]bool{},
		logDriver:  logDriver,
		logger:     logger,
		client:     c,
		watch:      newWatchHub(),
		eventsDone: make(chan struct{}),
	}
	for _, n := range nodes {
		s.nodes[n] = true
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.stopEvents = cancel
	go func() {
		defer close(s.eventsDone)
		s.followEvents(s.withNamespace(ctx))
	}()
	return s, nil
}

func (s *session) close() {
	s.stopEvents()
	<-s.eventsDone
	s.watch.closeAll(status.Error(codes.Unavailable, "the runtime plugin is shutting down or was reconfigured"))
	if err := s.client.Close(); err != nil {
		s.logger.Warn("close containerd client", "err", err)
	}
}

// withNamespace puts the configured containerd namespace on ctx: some client
// helpers read it from the context rather than the connection.
func (s *session) withNamespace(ctx context.Context) context.Context {
	return namespaces.WithNamespace(ctx, s.cfg.Namespace)
}

// serves says whether a containerd object labelled with node is this
// session's.
func (s *session) serves(node string) bool {
	if node == "" {
		return false
	}
	return len(s.nodes) == 0 || s.nodes[node]
}

func (s *session) logDir(podUID, container string) string {
	return filepath.Join(s.cfg.StateDir, "logs", podUID, container)
}

func (s *session) logPath(podUID, container string, attempt uint32) string {
	return filepath.Join(s.logDir(podUID, container), strconv.FormatUint(uint64(attempt), 10)+".log")
}
