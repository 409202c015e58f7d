// Package pluginhost finds, pins (SHA-256), launches (go-plugin over gRPC,
// AutoMTLS), health-checks and restarts plugin processes, for the agent and
// for plugin authors' tests (the conformance kit): it imports nothing of
// the agent.
//
// A Host holds where plugin binaries live and which checksums pin them.
// Start launches one plugin process of a Family and supervises it for as
// long as its context lives; the Plugin it returns gives one client of the
// family's service that stays valid across restarts of the process.
// StartRuntime and StartNetwork are Start with RuntimeFamily and
// NetworkFamily. Every family shares the launch, the base protocol
// (describe, validate, configure), supervision, events and the forwarding
// client (process.go, instance.go); a family's own file (runtime.go,
// network.go) is one declaration of what differs.
package pluginhost

import (
	"encoding/hex"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// Config says where plugin binaries are and how they are pinned.
type Config struct {
	// Dirs are searched in order for a plugin binary by its name; the first
	// match wins.
	Dirs []string
	// Checksums pins binaries by name to "sha256:<hex>". A pinned binary
	// whose content differs is refused at every start.
	Checksums map[string]string
}

// Host launches and supervises plugin processes.
type Host struct {
	dirs      []string
	checksums map[string][]byte
	log       *slog.Logger
	timing    timing
}

// timing holds the durations of supervision; tests shorten some of them.
type timing struct {
	startTimeout   time.Duration // from exec to go-plugin's handshake line
	setupTimeout   time.Duration // each of Describe and Configure at a start
	healthInterval time.Duration
	healthTimeout  time.Duration
	healthFailures int // consecutive failed checks that make a plugin unhealthy
	backoffMin     time.Duration
	backoffMax     time.Duration
	backoffReset   time.Duration // uptime after which a crash restarts at backoffMin again
	stopTimeout    time.Duration // graceful shutdown before SIGKILL
}

var defaultTiming = timing{
	startTimeout:   30 * time.Second,
	setupTimeout:   30 * time.Second,
	healthInterval: 5 * time.Second,
	healthTimeout:  5 * time.Second,
	healthFailures: 2,
	backoffMin:     200 * time.Millisecond,
	backoffMax:     30 * time.Second,
	backoffReset:   time.Minute,
	stopTimeout:    5 * time.Second,
}

// restartBackoff is the delays between restarts of a crash-looping
// plugin: backoffMin, doubling up to backoffMax.
func (t timing) restartBackoff() wait.Backoff {
	return wait.Backoff{Duration: t.backoffMin, Factor: 2, Cap: t.backoffMax, Steps: math.MaxInt32}
}

// New returns a Host for cfg. Plugin processes log through log, each record
// with plugin=<process name>; nil means slog.Default().
func New(cfg Config, log *slog.Logger) (*Host, error) {
	if log == nil {
		log = slog.Default()
	}
	h := &Host{
		dirs:      append([]string(nil), cfg.Dirs...),
		checksums: map[string][]byte{},
		log:       log,
		timing:    defaultTiming,
	}
	for name, sum := range cfg.Checksums {
		b, err := parseChecksum(sum)
		if err != nil {
			return nil, fmt.Errorf("checksum of plugin %q: %w", name, err)
		}
		h.checksums[name] = b
	}
	return h, nil
}

const checksumPrefix = "sha256:"

func parseChecksum(s string) ([]byte, error) {
	hexSum, ok := strings.CutPrefix(s, checksumPrefix)
	b, err := hex.DecodeString(hexSum)
	if !ok || err != nil || len(b) != 32 {
		return nil, fmt.Errorf("want %q followed by 64 hex digits, got %q", checksumPrefix, s)
	}
	return b, nil
}

func formatChecksum(b []byte) string {
	return checksumPrefix + hex.EncodeToString(b)
}
