package node

import (
	"context"
	"log/slog"
	"testing"

	"google.golang.org/grpc"
	corev1 "k8s.io/api/core/v1"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// nodeBackend answers GetNode with a fixed node; nothing else is called.
type nodeBackend struct {
	runtimev1.RuntimeClient
	node *runtimev1.Node
}

func (b nodeBackend) Client() runtimev1.RuntimeClient { return b }
func (b nodeBackend) State() (bool, string, string)   { return true, "", "" }
func (b nodeBackend) GetNode(context.Context, *runtimev1.GetNodeRequest, ...grpc.CallOption) (*runtimev1.Node, error) {
	return b.node, nil
}

// The node's Ready condition follows the backend: True when ready, False
// with its reason when not, and Unknown when the backend cannot observe
// the node (a member cluster that does not answer).
func TestReadyFollowsTheBackend(t *testing.T) {
	for _, tc := range []struct {
		name   string
		node   *runtimev1.Node
		status corev1.ConditionStatus
		reason string
	}{
		{"ready", &runtimev1.Node{Ready: true, Reason: "MemberReady"}, corev1.ConditionTrue, "KubeletReady"},
		{"refused", &runtimev1.Node{Reason: "MemberForbidden", Message: "forbidden"}, corev1.ConditionFalse, "MemberForbidden"},
		{"unobservable", &runtimev1.Node{Reason: "MemberUnreachable", Message: "connection refused", Unobservable: true}, corev1.ConditionUnknown, "MemberUnreachable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := New(Config{Name: "member-1"}, nil, nodeBackend{node: tc.node}, slog.New(slog.DiscardHandler))
			st := c.observe(context.Background())
			ready := st.Conditions[0]
			if ready.Type != corev1.NodeReady || ready.Status != tc.status || ready.Reason != tc.reason || ready.Message != tc.node.Message && !tc.node.Ready {
				t.Errorf("Ready %+v, want %s with reason %s and the backend's message", ready, tc.status, tc.reason)
			}
		})
	}
}
