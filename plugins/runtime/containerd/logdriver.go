package containerd

import (
	"os"
	"path/filepath"
	"syscall"

	"github.com/fedlet/fedlet/plugins/runtime/containerd/logdriver"
)

// LogDriverArg is the first argument with which the runc shim starts a
// container's log driver:
//
//	fedlet-log-driver log-driver /state/logs/<pod-uid>/<container>/<attempt>.log
//
// The shim, not the plugin, owns that process, so logs keep being written
// while the plugin is down.
const LogDriverArg = logdriver.Arg

// LogDriverBinary is the dedicated log driver's executable, looked for
// beside the plugin's own.
const LogDriverBinary = "fedlet-log-driver"

// IsLogDriver says whether args (os.Args) start a log driver or a stdio
// keeper: an executable that may serve as its own log driver dispatches on
// it first thing.
func IsLogDriver(args []string) bool { return logdriver.Is(args) || logdriver.IsStdio(args) }

// RunLogDriver runs the log driver or stdio keeper that args (os.Args) name
// and exits the process when the container's output ends. It does not
// return.
func RunLogDriver(args []string) {
	if logdriver.IsStdio(args) {
		logdriver.RunStdio(args)
	}
	logdriver.Run(args)
}

// findLogDriver returns LogDriverBinary beside the executable self if it is
// there, and self otherwise: the shim waits for the driver before creating
// each container, and the small binary starts several times faster than the
// plugin re-executed. The shim runs it as root and, unlike the plugin, it is
// not pinned by checksum: one that others than its owner may replace is not
// used.
func findLogDriver(self string) string {
	path := filepath.Join(filepath.Dir(self), LogDriverBinary)
	fi, err := os.Stat(path)
	if err != nil || !fi.Mode().IsRegular() || fi.Mode()&0o111 == 0 || fi.Mode()&0o022 != 0 {
		return self
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); !ok || (st.Uid != 0 && int(st.Uid) != os.Getuid()) {
		return self
	}
	return path
}
