package sdk_test

import (
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/fedlet/fedlet/plugins/sdk"
)

func TestNodesCheck(t *testing.T) {
	var n sdk.Nodes
	check := func(when, node string, want codes.Code) {
		t.Helper()
		if got := status.Code(n.Check(node)); got != want {
			t.Errorf("%s: Check(%q) = %v, want %v", when, node, n.Check(node), want)
		}
	}
	check("unconfigured", "", codes.InvalidArgument)
	check("unconfigured", "a", codes.FailedPrecondition)

	n.Configure([]string{"a", "b"})
	check("serving a and b", "a", codes.OK)
	check("serving a and b", "c", codes.NotFound)
	check("serving a and b", "", codes.InvalidArgument)

	n.Configure([]string{"c"})
	check("serving c", "a", codes.NotFound)
	check("serving c", "c", codes.OK)

	n.Configure(nil)
	check("configured with no nodes", "anything", codes.OK)
	check("configured with no nodes", "", codes.InvalidArgument)
}
