package containerd

import (
	"fmt"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
	"github.com/fedlet/fedlet/plugins/sdk"
)

// withVolumeMounts adds the pod volumes the agent made on the node as bind
// mounts. Each host path must exist: a missing one would make runc fail
// the start with a message about the mount rather than the volume.
func withVolumeMounts(mounts []specs.Mount, volumes []*runtimev1.Mount) ([]specs.Mount, error) {
	for i, v := range volumes {
		field := fmt.Sprintf("container.mounts[%d]", i)
		if !filepath.IsAbs(v.GetHostPath()) {
			return nil, sdk.InvalidArgument(field+".host_path", fmt.Sprintf("%q is not an absolute path", v.GetHostPath()))
		}
		if !filepath.IsAbs(v.GetContainerPath()) {
			return nil, sdk.InvalidArgument(field+".container_path", fmt.Sprintf("%q is not an absolute path", v.GetContainerPath()))
		}
		if _, err := os.Stat(v.GetHostPath()); err != nil {
			return nil, sdk.InvalidArgument(field+".host_path", err.Error())
		}
		mode := "rw"
		if v.GetReadOnly() {
			mode = "ro"
		}
		mounts = append(mounts, specs.Mount{
			Destination: v.GetContainerPath(), Type: "bind", Source: v.GetHostPath(),
			Options: []string{"rbind", "rprivate", mode},
		})
	}
	return mounts, nil
}
