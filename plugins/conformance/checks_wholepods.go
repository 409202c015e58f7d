package conformance

import (
	"context"
	"fmt"
	"slices"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// The whole-pod suite: a plugin with CAPABILITY_WHOLE_PODS (a member
// cluster behind a virtual node) runs the pods the agent hands over whole.

// What such a plugin says of itself and its node.
var wholePodPluginChecks = []Check{
	{
		Name: "whole-pods-declared",
		Rule: "Describe says which optional capabilities the plugin has: a backend that runs whole pods declares CAPABILITY_WHOLE_PODS, on every call (the agent chooses the pod-level calls by it)",
		run:  checkWholePodsDeclared,
	},
	{
		Name: "get-node",
		Rule: "GetNode reports the node's capacity (cpu, memory, pods in Kubernetes quantity syntax), system information (operating system, architecture) and health: ready once the backend can run pods (the kit waits for it up to its timeout); a node that is not ready says why (reason and message), and one that cannot be observed is not ready",
		run:  checkWholePodNode,
	},
	{
		Name: "container-calls-unimplemented",
		Rule: "a backend with CAPABILITY_WHOLE_PODS runs whole pods: the agent calls the pod-level RPCs instead of the sandbox, image and container ones, so these (PullImage, RunSandbox, RemoveSandbox, ListSandboxes, StartContainer, StopContainer, RemoveContainer, WatchContainers) answer Unimplemented rather than pretend to run anything, and the plugin keeps serving (same process)",
		run:  checkContainerCallsUnimplemented,
	},
}

// The life of a pod: created, run, reported, deleted.
var wholePodChecks = []Check{
	{
		Name: "pod-create-runs",
		Rule: "CreatePod runs the pod on the node's backend and returns its status (the pod's UID, namespace and name, a core/v1 PodStatus in Kubernetes protobuf); WatchPods, whose response headers come once the watch is registered, reports it Running with a pod IP and every container running; ListPods lists it once, by its UID, namespace and name, not lost",
		run:  checkPodCreateRuns,
	},
	{
		Name: "pod-create-idempotent",
		Rule: "every call is idempotent: CreatePod of a pod that runs there already (the same pod UID) returns its status and starts nothing: ListPods lists it once, its containers keep their IDs and start times, none restarted",
		run:  checkPodCreateIdempotent,
	},
	{
		Name: "pod-create-same-name",
		Rule: "the pod UID is the pod's identity: CreatePod of another pod (another UID) with the same namespace and name never touches the pod that runs (it stays listed under its UID, its containers not restarted); the backend either runs the second pod as well, listed under its own UID, or refuses it with an error (a member cluster, where names are unique, refuses it)",
		run:  checkPodCreateSameName,
	},
	{
		Name: "pod-config-objects",
		Rule: "CreatePod carries the ConfigMaps and Secrets the pod refers to (env, envFrom, volumes), which the backend must have before the pod: a container sees a ConfigMap key and a Secret key in its env, and a ConfigMap and a Secret through envFrom (volumes are left out: not every node of a member mounts them)",
		run:  checkPodConfigObjects,
	},
	{
		Name: "pod-delete",
		Rule: "DeletePod deletes the pod with its grace period and returns once the backend has accepted the deletion; a repeated DeletePod succeeds, before and after the pod is gone; only ListPods says it is gone (it stops listing it), and WatchPods never reports a pod whose deletion was asked for as lost (lost is for a pod the backend no longer has although nobody asked to delete it)",
		run:  checkPodDelete,
	},
	{
		Name: "pod-delete-unknown",
		Rule: "deleting a pod that does not exist succeeds, with or without its namespace and name",
		run:  checkPodDeleteUnknown,
	},
}

// Restarts of the plugin process.
var wholePodRestartChecks = []Check{
	{
		Name: "pod-adopt-after-plugin-restart",
		Rule: "ListPods lists every pod the node's backend runs for this agent, found by their origin, not by the plugin's memory: after the plugin process is killed and restarted it lists the pod still running, its containers not restarted, and a repeated CreatePod starts nothing",
		run:  checkPodAdoptAfterRestart,
	},
}

func checkWholePodsDeclared(p *probe) {
	ctx, cancel := p.call()
	defer cancel()
	d, err := p.rt().Describe(ctx, &runtimev1.DescribeRequest{})
	if err != nil {
		p.Fatalf("Describe: %v", err)
	}
	if !slices.Contains(d.GetCapabilities(), runtimev1.Capability_CAPABILITY_WHOLE_PODS) {
		p.Errorf("Describe answers capabilities %v now, without CAPABILITY_WHOLE_PODS, which it declared when the plugin started", d.GetCapabilities())
	}
}

func checkWholePodNode(p *probe) {
	deadline := time.Now().Add(p.suite.cfg.Timeout)
	for {
		ctx, cancel := p.call()
		n, err := p.rt().GetNode(ctx, &runtimev1.GetNodeRequest{Node: p.node()})
		cancel()
		if err != nil {
			p.Fatalf("GetNode %s: %v", p.node(), err)
		}
		if !n.GetReady() && n.GetReason() == "" && n.GetMessage() == "" {
			p.Errorf("GetNode %s: not ready, without a reason or message saying why", p.node())
		}
		if n.GetUnobservable() && n.GetReady() {
			p.Errorf("GetNode %s: ready and unobservable at once; unobservable must come with ready false", p.node())
		}
		if n.GetReady() || time.Now().After(deadline) {
			p.checkNodeReport(n)
			if !n.GetReady() {
				p.Errorf("the node is not ready within %v: reason %q, message %q", p.suite.cfg.Timeout, n.GetReason(), n.GetMessage())
			}
			return
		}
		p.sleep(time.Second)
	}
}

func checkContainerCallsUnimplemented(p *probe) {
	node, uid := p.node(), newUID()
	pod := &runtimev1.PodRef{Uid: uid, Namespace: podNamespace, Name: p.newName()}
	spec := &runtimev1.ContainerSpec{Name: "app", Image: p.imageOrPlaceholder(), Command: []string{"sh", "-c", "true"}}
	un := codes.Unimplemented
	p.expectRefused([]badCall{
		{"PullImage", un, func(ctx context.Context, rt runtimev1.RuntimeClient) error {
			_, err := rt.PullImage(ctx, &runtimev1.PullImageRequest{Node: node, Image: p.imageOrPlaceholder()})
			return err
		}},
		{"RunSandbox", un, func(ctx context.Context, rt runtimev1.RuntimeClient) error {
			_, err := rt.RunSandbox(ctx, &runtimev1.RunSandboxRequest{Node: node, Pod: pod})
			return err
		}},
		{"ListSandboxes", un, func(ctx context.Context, rt runtimev1.RuntimeClient) error {
			_, err := rt.ListSandboxes(ctx, &runtimev1.ListSandboxesRequest{Node: node})
			return err
		}},
		{"StartContainer", un, func(ctx context.Context, rt runtimev1.RuntimeClient) error {
			_, err := rt.StartContainer(ctx, &runtimev1.StartContainerRequest{Node: node, Pod: pod, Container: spec})
			return err
		}},
		{"StopContainer", un, func(ctx context.Context, rt runtimev1.RuntimeClient) error {
			_, err := rt.StopContainer(ctx, &runtimev1.StopContainerRequest{Node: node, PodUid: uid, Name: "app", GracePeriodSeconds: 1})
			return err
		}},
		{"RemoveContainer", un, func(ctx context.Context, rt runtimev1.RuntimeClient) error {
			_, err := rt.RemoveContainer(ctx, &runtimev1.RemoveContainerRequest{Node: node, PodUid: uid, Name: "app"})
			return err
		}},
		{"RemoveSandbox", un, func(ctx context.Context, rt runtimev1.RuntimeClient) error {
			_, err := rt.RemoveSandbox(ctx, &runtimev1.RemoveSandboxRequest{Node: node, PodUid: uid})
			return err
		}},
		{"WatchContainers", un, func(ctx context.Context, rt runtimev1.RuntimeClient) error {
			s, err := rt.WatchContainers(ctx, &runtimev1.WatchContainersRequest{Node: node})
			if err != nil {
				return err
			}
			return firstRecv(s.Recv)
		}},
	})
}

// sleeperScript says it started, then sleeps for an hour: a container
// that runs until its pod is deleted.
const sleeperScript = "echo started; exec sleep 3600"

func checkPodCreateRuns(p *probe) {
	w := p.watchPods()
	pod := p.wholePod(p.shell("app", sleeperScript))
	p.createPod(pod, nil, nil)

	st := w.waitFor(pod, "Running with a pod IP and every container running", func(st *corev1.PodStatus) bool {
		return runningWithIP(pod, st)
	})
	for _, ps := range w.of(string(pod.UID)) {
		if got := ps.GetPod(); got.GetNamespace() != pod.Namespace || got.GetName() != pod.Name {
			p.Errorf("WatchPods names pod %s as %s/%s, want %s/%s", pod.UID, got.GetNamespace(), got.GetName(), pod.Namespace, pod.Name)
			break
		}
		if ps.GetLost() {
			p.Errorf("WatchPods reported pod %s/%s lost while it ran", pod.Namespace, pod.Name)
			break
		}
	}
	// A pod seen running by the watch is in the listing too.
	ps := p.podListed(pod)
	if ps == nil {
		p.Fatalf("ListPods does not list pod %s/%s (%s), which WatchPods reports running (%s)", pod.Namespace, pod.Name, pod.UID, describePod(st))
	}
	listed, err := decodePodStatus(ps)
	if err != nil {
		p.Fatalf("ListPods: the status of pod %s/%s is not a core/v1 PodStatus in protobuf: %v", pod.Namespace, pod.Name, err)
	}
	if listed.Phase != corev1.PodRunning || listed.PodIP == "" {
		p.Errorf("ListPods lists pod %s/%s as %s; WatchPods reported it Running with pod IP %s", pod.Namespace, pod.Name, describePod(listed), st.PodIP)
	}
}

func checkPodCreateIdempotent(p *probe) {
	pod := p.wholePod(p.shell("app", sleeperScript))
	p.createPod(pod, nil, nil)
	before := p.waitRunning(pod)

	for i := range 2 {
		again := p.createWith(p.createRequest(pod, nil, nil), pod)
		if st, err := decodePodStatus(again); err == nil && st.Phase != "" && st.Phase != corev1.PodRunning {
			p.Errorf("CreatePod repeated (%d) answered %s for a pod that runs", i+1, describePod(st))
		}
	}
	now := p.waitRunning(pod)
	p.sameContainers("after two more CreatePod calls of the pod", before, now)
	if !now.StartTime.Equal(before.StartTime) {
		p.Errorf("after two more CreatePod calls the pod's start time is %v, before it was %v: it was started again", now.StartTime, before.StartTime)
	}
}

func checkPodCreateSameName(p *probe) {
	first := p.wholePod(p.shell("app", sleeperScript))
	p.createPod(first, nil, nil)
	before := p.waitRunning(first)

	second := first.DeepCopy()
	second.UID = types.UID(newUID())
	second.Spec.Containers[0].Command = []string{"sh", "-c", "echo second; exec sleep 3600"}
	p.deleteWhenDone(podRef(second))
	ctx, cancel := p.call()
	_, err := p.rt().CreatePod(ctx, p.createRequest(second, nil, nil))
	cancel()

	if err == nil {
		// Run as well: then listed under its own UID.
		p.waitRunning(second)
	} else if n := len(p.podsListed(string(second.UID))); n != 0 {
		p.Errorf("CreatePod of the second pod failed (%v), yet ListPods lists it %d times", err, n)
	}
	now := p.waitRunning(first)
	p.sameContainers(fmt.Sprintf("after CreatePod of another pod of the same name (it answered %v)", status.Code(err)), before, now)
}

func checkPodConfigObjects(p *probe) {
	greeting, password := "hello-"+newUID()[:8], "s3cret-"+newUID()[:8]
	cm := &corev1.ConfigMap{
		ObjectMeta: p.objectMeta("cm"),
		Data:       map[string]string{"greeting": greeting},
	}
	secret := &corev1.Secret{
		ObjectMeta: p.objectMeta("secret"),
		Type:       corev1.SecretTypeOpaque,
		Data:       map[string][]byte{"password": []byte(password)},
	}
	app := p.shell("app", `echo "env=$FROM_CM,$FROM_SECRET envFrom=$CM_greeting,$SECRET_password"; exec sleep 3600`)
	app.Env = []corev1.EnvVar{
		{Name: "FROM_CM", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: cm.Name}, Key: "greeting",
		}}},
		{Name: "FROM_SECRET", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: secret.Name}, Key: "password",
		}}},
	}
	app.EnvFrom = []corev1.EnvFromSource{
		{Prefix: "CM_", ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: cm.Name}}},
		{Prefix: "SECRET_", SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: secret.Name}}},
	}
	pod := p.wholePod(app)
	p.createPod(pod, []*corev1.ConfigMap{cm}, []*corev1.Secret{secret})
	p.waitRunning(pod)

	ref := podRef(pod)
	want := fmt.Sprintf("env=%s,%s envFrom=%s,%s\n", greeting, password, greeting, password)
	p.waitLog(ref, "app", "envFrom=")
	if got := p.allLogs(ref, "app"); got != want {
		p.Errorf("the container printed %q, want %q: the ConfigMap's and the Secret's values through env and envFrom", got, want)
	}
}

// objectMeta names a ConfigMap or Secret of the check as the agent hands it
// over: in the pods' namespace, with a UID and a resource version.
func (p *probe) objectMeta(kind string) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name: p.check.Name + "-" + kind + "-" + newUID()[:8], Namespace: podNamespace,
		UID: types.UID(newUID()), ResourceVersion: "1",
	}
}

func checkPodDelete(p *probe) {
	w := p.watchPods()
	// It ends at SIGTERM: sh runs the trap once the sleep is over.
	pod := p.wholePod(p.shell("app", "trap 'exit 0' TERM; echo started; while :; do sleep 1; done"))
	p.createPod(pod, nil, nil)
	p.waitRunning(pod)

	ref := podRef(pod)
	const grace = 10
	p.deletePod(ref, grace)
	p.deletePod(ref, grace) // repeated while it terminates

	deadline := time.Now().Add(p.suite.cfg.Timeout + grace*time.Second)
	for p.podListed(pod) != nil {
		if time.Now().After(deadline) {
			p.Fatalf("ListPods still lists pod %s/%s %v after its DeletePod with grace period %ds", pod.Namespace, pod.Name, p.suite.cfg.Timeout+grace*time.Second, grace)
		}
		p.sleep(podPollInterval)
	}
	p.deletePod(ref, grace) // repeated once it is gone
	if n := len(p.podsListed(ref.GetUid())); n != 0 {
		p.Errorf("a DeletePod repeated after the pod was gone left ListPods listing it %d times", n)
	}
	for _, ps := range w.of(ref.GetUid()) {
		if ps.GetLost() {
			p.Errorf("WatchPods reported pod %s/%s lost; its deletion was asked for with DeletePod", pod.Namespace, pod.Name)
			break
		}
	}
}

func checkPodDeleteUnknown(p *probe) {
	uid := newUID()
	p.deletePod(&runtimev1.PodRef{Uid: uid, Namespace: podNamespace, Name: p.newName()}, 1)
	p.deletePod(&runtimev1.PodRef{Uid: uid}, 1)
	p.deletePod(&runtimev1.PodRef{Uid: uid}, 0)
	if n := len(p.podsListed(uid)); n != 0 {
		p.Errorf("ListPods lists the pod that never existed %d times after DeletePod", n)
	}
}

func checkPodAdoptAfterRestart(p *probe) {
	pod := p.wholePod(p.shell("app", sleeperScript))
	p.createPod(pod, nil, nil)
	before := p.waitRunning(pod)

	oldPid := p.killPlugin()
	if newPid, err := p.suite.plugin.serving(); err != nil || newPid == oldPid {
		p.Fatalf("after the restart: pid %d serves, %d was killed (%v)", newPid, oldPid, err)
	}

	// At once: the agent lists the backend as soon as the plugin is back,
	// and takes what is not listed for not running.
	if p.podListed(pod) == nil {
		p.Fatalf("after the restart ListPods does not list pod %s/%s (%s), which ran before it", pod.Namespace, pod.Name, pod.UID)
	}
	now := p.waitRunning(pod)
	p.sameContainers("after the plugin's restart", before, now)

	p.createWith(p.createRequest(pod, nil, nil), pod)
	again := p.waitRunning(pod)
	p.sameContainers("after a CreatePod repeated after the plugin's restart", before, again)
}
