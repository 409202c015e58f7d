package conformance

import (
	"context"

	"google.golang.org/grpc/codes"
	corev1 "k8s.io/api/core/v1"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// Bad input to the pod-level calls and to the streams of whole pods:
// refused with the code that says why, and never a crash.
var wholePodBadInputChecks = []Check{
	{
		Name: "pod-bad-input-no-node",
		Rule: "every call names the node it is for: GetNode, CreatePod, DeletePod, ListPods and WatchPods without one fail with InvalidArgument, and the plugin keeps serving (same process)",
		run:  checkPodNoNode,
	},
	{
		Name: "pod-bad-input-no-pod-uid",
		Rule: "the pod UID is the pod's identity: CreatePod of a pod object without metadata.uid and DeletePod without a pod UID fail with InvalidArgument, and the plugin keeps serving (same process)",
		run:  checkPodNoUID,
	},
	{
		Name: "pod-bad-input-undecodable",
		Rule: "CreatePod carries the pod, its ConfigMaps and its Secrets as Kubernetes protobuf: a pod_object that is missing or is not a core/v1 Pod, or a config_maps or secrets entry that is not a ConfigMap or Secret, fails with InvalidArgument and runs nothing, and the plugin keeps serving (same process)",
		run:  checkPodUndecodable,
	},
	{
		Name: "pod-unknown-node",
		Rule: "GetNode, CreatePod, DeletePod, ListPods and WatchPods for a node the plugin was not configured to serve fail with NotFound (an unknown node, as the protocol's NotFound is for what is unknown), and the plugin keeps serving (same process)",
		run:  checkPodUnknownNode,
	},
	{
		Name: "pod-streams-bad-input",
		Rule: "ContainerLogs, Exec, Attach and PortForward without a node or without a pod UID fail with InvalidArgument, for a node not served with NotFound, and the plugin keeps serving (same process)",
		run:  checkPodStreamsBadInput,
	},
}

// podCalls are the pod-level calls of a node, each with a request about
// pod; ref names the pod for DeletePod.
func podCalls(node string, create *runtimev1.CreatePodRequest, ref *runtimev1.PodRef, want codes.Code, why string) []badCall {
	create.Node = node
	return []badCall{
		{"GetNode " + why, want, func(ctx context.Context, rt runtimev1.RuntimeClient) error {
			_, err := rt.GetNode(ctx, &runtimev1.GetNodeRequest{Node: node})
			return err
		}},
		{"CreatePod " + why, want, func(ctx context.Context, rt runtimev1.RuntimeClient) error {
			_, err := rt.CreatePod(ctx, create)
			return err
		}},
		{"DeletePod " + why, want, func(ctx context.Context, rt runtimev1.RuntimeClient) error {
			_, err := rt.DeletePod(ctx, &runtimev1.DeletePodRequest{Node: node, Pod: ref, GracePeriodSeconds: 1})
			return err
		}},
		{"ListPods " + why, want, func(ctx context.Context, rt runtimev1.RuntimeClient) error {
			_, err := rt.ListPods(ctx, &runtimev1.ListPodsRequest{Node: node})
			return err
		}},
		{"WatchPods " + why, want, func(ctx context.Context, rt runtimev1.RuntimeClient) error {
			s, err := rt.WatchPods(ctx, &runtimev1.WatchPodsRequest{Node: node})
			if err != nil {
				return err
			}
			return firstRecv(s.Recv)
		}},
	}
}

// refusedPod is a valid pod for calls that must be refused for another
// reason; it is deleted on the real node when the check ends, in case the
// plugin ran it after all.
func (p *probe) refusedPod() (*corev1.Pod, *runtimev1.CreatePodRequest) {
	pod := p.wholePod(p.shell("app", sleeperScript))
	p.deleteWhenDone(podRef(pod))
	return pod, p.createRequest(pod, nil, nil)
}

// wantNotRun fails the check if ListPods lists the pod.
func (p *probe) wantNotRun(pod *corev1.Pod, after string) {
	if n := len(p.podsListed(string(pod.UID))); n != 0 {
		p.Errorf("%s, ListPods lists pod %s/%s: a refused call must run nothing", after, pod.Namespace, pod.Name)
	}
}

func checkPodNoNode(p *probe) {
	pod, req := p.refusedPod()
	p.expectRefused(podCalls("", req, podRef(pod), codes.InvalidArgument, "without node"))
	p.wantNotRun(pod, "after CreatePod without node")
}

func checkPodNoUID(p *probe) {
	pod := p.wholePod(p.shell("app", sleeperScript))
	pod.UID = ""
	req := p.createRequest(pod, nil, nil)
	node, inv := p.node(), codes.InvalidArgument
	p.expectRefused([]badCall{
		{"CreatePod of a pod object without metadata.uid", inv, func(ctx context.Context, rt runtimev1.RuntimeClient) error {
			_, err := rt.CreatePod(ctx, req)
			return err
		}},
		{"DeletePod of a pod without UID", inv, func(ctx context.Context, rt runtimev1.RuntimeClient) error {
			_, err := rt.DeletePod(ctx, &runtimev1.DeletePodRequest{Node: node, Pod: &runtimev1.PodRef{Namespace: pod.Namespace, Name: pod.Name}, GracePeriodSeconds: 1})
			return err
		}},
		{"DeletePod without pod", inv, func(ctx context.Context, rt runtimev1.RuntimeClient) error {
			_, err := rt.DeletePod(ctx, &runtimev1.DeletePodRequest{Node: node, GracePeriodSeconds: 1})
			return err
		}},
	})
	// A pod without UID the plugin ran after all has no UID to list it by.
	ctx, cancel := p.call()
	defer cancel()
	resp, err := p.rt().ListPods(ctx, &runtimev1.ListPodsRequest{Node: node})
	if err != nil {
		p.Fatalf("ListPods: %v", err)
	}
	for _, ps := range resp.GetPods() {
		if ps.GetPod().GetName() == pod.Name || ps.GetPod().GetUid() == "" {
			p.Errorf("after CreatePod without pod UID, ListPods lists %v: a refused call must run nothing", ps.GetPod())
		}
	}
}

// garbage is not Kubernetes protobuf of anything: field 1 with wire type 7,
// which does not exist.
var garbage = []byte{0x0f, 0xff, 0xff, 0xff}

func checkPodUndecodable(p *probe) {
	pod, valid := p.refusedPod()
	node, inv := p.node(), codes.InvalidArgument
	create := func(change func(*runtimev1.CreatePodRequest)) func(context.Context, runtimev1.RuntimeClient) error {
		return func(ctx context.Context, rt runtimev1.RuntimeClient) error {
			req := &runtimev1.CreatePodRequest{Node: node, PodObject: valid.GetPodObject()}
			change(req)
			_, err := rt.CreatePod(ctx, req)
			return err
		}
	}
	p.expectRefused([]badCall{
		{"CreatePod without pod_object", inv, create(func(r *runtimev1.CreatePodRequest) { r.PodObject = nil })},
		{"CreatePod of a pod_object that is not Kubernetes protobuf", inv, create(func(r *runtimev1.CreatePodRequest) { r.PodObject = garbage })},
		{"CreatePod with a config_maps entry that is not Kubernetes protobuf", inv, create(func(r *runtimev1.CreatePodRequest) { r.ConfigMaps = [][]byte{garbage} })},
		{"CreatePod with a secrets entry that is not Kubernetes protobuf", inv, create(func(r *runtimev1.CreatePodRequest) { r.Secrets = [][]byte{garbage} })},
	})
	p.wantNotRun(pod, "after the refused CreatePod calls")
}

func checkPodUnknownNode(p *probe) {
	pod, req := p.refusedPod()
	p.expectRefused(podCalls("not-"+p.node()+"-"+newUID()[:8], req, podRef(pod), codes.NotFound, "for a node not served"))
	p.wantNotRun(pod, "after CreatePod for a node not served")
}

func checkPodStreamsBadInput(p *probe) {
	node, uid := p.node(), newUID()
	unknownNode := "not-" + node + "-" + newUID()[:8]
	inv, nf := codes.InvalidArgument, codes.NotFound
	p.expectRefused([]badCall{
		{"ContainerLogs without node", inv, logsRefusal("", uid, "app")},
		{"Exec without node", inv, execRefusal("", uid, "app", "true")},
		{"Attach without node", inv, attachRefusal("", uid, "app", false)},
		{"PortForward without node", inv, portForwardRefusal("", uid, webPort)},
		{"ContainerLogs without pod UID", inv, logsRefusal(node, "", "app")},
		{"Exec without pod UID", inv, execRefusal(node, "", "app", "true")},
		{"Attach without pod UID", inv, attachRefusal(node, "", "app", false)},
		{"PortForward without pod UID", inv, portForwardRefusal(node, "", webPort)},
		{"ContainerLogs for a node not served", nf, logsRefusal(unknownNode, uid, "app")},
		{"Exec for a node not served", nf, execRefusal(unknownNode, uid, "app", "true")},
		{"Attach for a node not served", nf, attachRefusal(unknownNode, uid, "app", false)},
		{"PortForward for a node not served", nf, portForwardRefusal(unknownNode, uid, webPort)},
	})
}
