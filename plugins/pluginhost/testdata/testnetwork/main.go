// Command testnetwork is the network plugin the pluginhost tests launch: the
// in-memory sdktest.Network, whose Status also tells about the process that
// answered: its message is "pid=<pid> configure-calls=<n> config=<config>".
package main

import (
	"context"
	"fmt"
	"os"

	networkv1 "github.com/fedlet/fedlet/plugins/proto/network/v1"
	"github.com/fedlet/fedlet/plugins/sdk"
	"github.com/fedlet/fedlet/plugins/sdk/sdktest"
)

type testNetwork struct {
	*sdktest.Network
}

func (n testNetwork) Status(ctx context.Context, req *networkv1.StatusRequest) (*networkv1.StatusResponse, error) {
	resp, err := n.Network.Status(ctx, req)
	if err != nil {
		return nil, err
	}
	config, _, calls := n.Configured()
	resp.Message = fmt.Sprintf("pid=%d configure-calls=%d config=%s", os.Getpid(), calls, config)
	return resp, nil
}

func main() {
	sdk.ServeNetwork(testNetwork{sdktest.NewNetwork("testnetwork", "0.0.1")})
}
