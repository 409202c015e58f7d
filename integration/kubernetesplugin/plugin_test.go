package kubernetesplugin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/client-go/kubernetes"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
	k8splugin "github.com/fedlet/fedlet/plugins/runtime/kubernetes"
)

// The virtual nodes of the test: two good ones on the member (one keeping
// hub namespaces, one mapping every pod into one namespace) and three
// whose credentials the member refuses or does not trust.
const (
	nodeGood      = "member-1"
	nodeMapped    = "member-mapped"
	nodeBadToken  = "member-bad-token"
	nodeBadCA     = "member-bad-ca"
	nodeForbidden = "member-forbidden"

	mappedNamespace = "fed-mapped"
	origin          = "hub-test"
)

// wait bounds every wait for the member (pulls, scheduling, containers)
// on a busy two-core machine.
const wait = 3 * time.Minute

// TestMemberCluster drives the plugin, launched by the agent's plugin host,
// against a real member cluster through the life of its pods.
func TestMemberCluster(t *testing.T) {
	c := memberCluster(t)
	member := c.Client()
	ctx := context.Background()
	dir := t.TempDir()
	admin := c.Kubeconfig()
	hubNS := "fed-" + rand.String(6)
	t.Cleanup(func() {
		for _, ns := range []string{hubNS, mappedNamespace, "fed-sa"} {
			_ = member.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})
		}
	})

	badToken := writeKubeconfig(t, admin, dir, "bad-token.kubeconfig", func(_ *clientcmdapi.Cluster, u *clientcmdapi.AuthInfo) {
		u.ClientCertificate, u.ClientKey, u.ClientCertificateData, u.ClientKeyData = "", "", nil, nil
		u.Token = "a-token-the-member-never-issued"
	})
	badCA := writeKubeconfig(t, admin, dir, "bad-ca.kubeconfig", func(cl *clientcmdapi.Cluster, _ *clientcmdapi.AuthInfo) {
		cl.CertificateAuthority, cl.CertificateAuthorityData = "", selfSignedCA(t)
	})
	token := powerlessToken(t, member)
	forbidden := writeKubeconfig(t, admin, dir, "forbidden.kubeconfig", func(_ *clientcmdapi.Cluster, u *clientcmdapi.AuthInfo) {
		u.ClientCertificate, u.ClientKey, u.ClientCertificateData, u.ClientKeyData = "", "", nil, nil
		u.Token = token
	})
	cfg, err := json.Marshal(map[string]any{
		"origin": origin,
		"members": []map[string]string{
			{"node": nodeGood, "kubeconfig": admin},
			{"node": nodeMapped, "kubeconfig": admin, "namespace": mappedNamespace},
			{"node": nodeBadToken, "kubeconfig": badToken},
			{"node": nodeBadCA, "kubeconfig": badCA},
			{"node": nodeForbidden, "kubeconfig": forbidden},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	p := startPlugin(t, cfg, nodeGood, nodeMapped, nodeBadToken, nodeBadCA, nodeForbidden)
	rt := p.client

	t.Run("Describe", func(t *testing.T) {
		d := p.rt.Describe()
		if d.GetName() != k8splugin.Name || len(d.GetCapabilities()) != 2 {
			t.Errorf("Describe = %v", d)
		}
	})

	t.Run("GetNode", func(t *testing.T) {
		n := waitNode(t, rt, nodeGood, func(n *runtimev1.Node) bool { return n.GetReady() })
		for _, r := range []string{"cpu", "memory", "pods"} {
			q, err := resource.ParseQuantity(n.GetCapacity()[r])
			if err != nil || q.Sign() <= 0 {
				t.Errorf("capacity %s = %q, want > 0", r, n.GetCapacity()[r])
			}
			a, err := resource.ParseQuantity(n.GetAllocatable()[r])
			if err != nil || a.Cmp(q) > 0 {
				t.Errorf("allocatable %s = %q, want at most the capacity %s", r, n.GetAllocatable()[r], q.String())
			}
		}
		if !strings.HasPrefix(n.GetContainerRuntimeVersion(), "kubernetes://v1.") {
			t.Errorf("container runtime version %q", n.GetContainerRuntimeVersion())
		}
		if n.GetKernelVersion() == "" || n.GetOperatingSystem() != "linux" {
			t.Errorf("kernel %q, OS %q: not the member node's nodeInfo", n.GetKernelVersion(), n.GetOperatingSystem())
		}
	})

	t.Run("BadKubeconfigs", func(t *testing.T) {
		for _, tc := range []struct{ node, reason, says string }{
			{nodeBadToken, k8splugin.ReasonUnauthorized, "bad-token.kubeconfig"},
			{nodeBadCA, k8splugin.ReasonUntrusted, "certificate"},
			{nodeForbidden, k8splugin.ReasonForbidden, "forbidden"},
		} {
			n := waitNode(t, rt, tc.node, func(n *runtimev1.Node) bool { return n.GetReason() == tc.reason })
			if n.GetReady() || !strings.Contains(n.GetMessage(), tc.says) {
				t.Errorf("node %s: ready %v, %s: %s; want not ready, with a message naming %q", tc.node, n.GetReady(), n.GetReason(), n.GetMessage(), tc.says)
			}
			// The member answers: its refusal is observed, not an outage.
			if n.GetUnobservable() {
				t.Errorf("node %s: unobservable, want observed (the member answers)", tc.node)
			}
		}
		// The others keep being served.
		if n, err := rt.GetNode(ctx, &runtimev1.GetNodeRequest{Node: nodeGood}); err != nil || !n.GetReady() {
			t.Errorf("GetNode(%s) = %v, %v; want ready", nodeGood, n, err)
		}
	})

	watch := watchPods(t, rt, nodeGood)
	image := c.Image()
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "app-config", Namespace: hubNS, UID: uuid.NewUUID()},
		Data:       map[string]string{"greeting": "hello-from-cm"},
	}
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "app-secret", Namespace: hubNS, UID: uuid.NewUUID()},
		Type:       corev1.SecretTypeOpaque,
		Data:       map[string][]byte{"password": []byte("s3cret")},
	}
	podA := hubPod("pod-a", hubNS, nodeGood,
		corev1.Container{
			Name: "main", Image: image, Command: []string{"sh", "-c", "echo hello from main; exec sleep 3600"},
			Env: []corev1.EnvVar{
				{Name: "FROM_CM", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "app-config"}, Key: "greeting"}}},
				{Name: "FROM_SECRET", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "app-secret"}, Key: "password"}}},
			},
		},
		corev1.Container{
			Name: "web", Image: image,
			Command: []string{"sh", "-c", "mkdir -p /www && echo hi-from-web > /www/index.html && exec httpd -f -p 8080 -h /www"},
		},
		corev1.Container{
			Name: "talk", Image: image, Stdin: true,
			Command: []string{"sh", "-c", "while read line; do echo got:$line; done; exec sleep 3600"},
		},
	)
	var memberA *corev1.Pod

	t.Run("CreatePod", func(t *testing.T) {
		st, err := rt.CreatePod(ctx, createRequest(t, nodeGood, podA, []*corev1.ConfigMap{cm}, []*corev1.Secret{secret}))
		if err != nil {
			t.Fatalf("CreatePod: %v", err)
		}
		if st.GetPod().GetUid() != string(podA.UID) || st.GetPod().GetName() != "pod-a" || st.GetPod().GetNamespace() != hubNS {
			t.Errorf("CreatePod answered for %v", st.GetPod())
		}

		ns, err := member.CoreV1().Namespaces().Get(ctx, hubNS, metav1.GetOptions{})
		if err != nil || ns.Labels[k8splugin.LabelManagedBy] != "fedlet" {
			t.Errorf("member namespace %s: %v, labels %v", hubNS, err, ns.GetLabels())
		}
		memberA, err = member.CoreV1().Pods(hubNS).Get(ctx, "pod-a", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		mcm, err := member.CoreV1().ConfigMaps(hubNS).Get(ctx, "app-config", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		msecret, err := member.CoreV1().Secrets(hubNS).Get(ctx, "app-secret", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if mcm.Data["greeting"] != "hello-from-cm" || string(msecret.Data["password"]) != "s3cret" {
			t.Errorf("copied data: ConfigMap %v, Secret %v", mcm.Data, msecret.Data)
		}
		checkOrigin(t, "ConfigMap", mcm.Labels, hubNS, "app-config", string(cm.UID))
		checkOrigin(t, "Secret", msecret.Labels, hubNS, "app-secret", string(secret.UID))
		// Made before the pod: the member's resource versions are ordered.
		if !olderThan(mcm.ResourceVersion, memberA.ResourceVersion) || !olderThan(msecret.ResourceVersion, memberA.ResourceVersion) {
			t.Errorf("resource versions: ConfigMap %s, Secret %s, pod %s: the objects were not made before the pod", mcm.ResourceVersion, msecret.ResourceVersion, memberA.ResourceVersion)
		}

		checkOrigin(t, "pod", memberA.Labels, hubNS, "pod-a", string(podA.UID))
		if memberA.Labels["app"] != "pod-a" || memberA.Annotations["example.com/note"] != "from the hub" {
			t.Errorf("hub labels and annotations not copied: %v, %v", memberA.Labels, memberA.Annotations)
		}
		s := memberA.Spec
		if len(memberA.OwnerReferences) != 0 {
			t.Errorf("owner references %v reached the member", memberA.OwnerReferences)
		}
		if _, ok := s.NodeSelector[k8splugin.LabelMember]; ok {
			t.Errorf("nodeSelector %v still selects the virtual node", s.NodeSelector)
		}
		for _, tol := range s.Tolerations {
			if tol.Key == k8splugin.TaintProvider {
				t.Errorf("toleration %v of the virtual node reached the member", tol)
			}
		}
		if s.AutomountServiceAccountToken == nil || *s.AutomountServiceAccountToken {
			t.Errorf("automountServiceAccountToken %v, want false", s.AutomountServiceAccountToken)
		}
		for _, v := range s.Volumes {
			if strings.HasPrefix(v.Name, "kube-api-access-hub") {
				t.Errorf("the hub's token volume %s reached the member", v.Name)
			}
		}
		if s.NodeName == nodeGood {
			t.Errorf("spec.nodeName is the virtual node's")
		}

		// It runs, with an address of the member's pod network.
		ps := watch.waitFor(t, "pod-a running with an IP", func(ps *runtimev1.PodStatus, st *corev1.PodStatus) bool {
			return ps.GetPod().GetUid() == string(podA.UID) && st.Phase == corev1.PodRunning && st.PodIP != "" && allRunning(st)
		})
		st2 := decodeStatus(t, ps)
		if !strings.HasPrefix(st2.PodIP, "10.240.") {
			t.Errorf("pod IP %s is not in the member's pod network %s", st2.PodIP, memberPodNetwork.CIDR)
		}
	})
	if memberA == nil {
		t.FailNow()
	}

	t.Run("Allocatable", func(t *testing.T) {
		// What other pods request is taken from the member's room; what
		// this node's own pods request is not: the hub counts those itself.
		n := waitNode(t, rt, nodeGood, func(n *runtimev1.Node) bool { return n.GetReady() })
		capCPU := resource.MustParse(n.GetCapacity()["cpu"])
		capPods := resource.MustParse(n.GetCapacity()["pods"])
		foreign := func(name, cpu string) {
			t.Helper()
			pod := &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "fed-sa"},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "main", Image: image, Command: []string{"sleep", "3600"},
					Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu)}},
				}}},
			}
			if _, err := member.CoreV1().Pods("fed-sa").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				zero := int64(0)
				_ = member.CoreV1().Pods("fed-sa").Delete(context.Background(), name, metav1.DeleteOptions{GracePeriodSeconds: &zero})
			})
		}
		allocatable := func(cpu string, pods int64) func(*runtimev1.Node) bool {
			wantCPU := capCPU.DeepCopy()
			wantCPU.Sub(resource.MustParse(cpu))
			wantPods := capPods.Value() - pods
			return func(n *runtimev1.Node) bool {
				got := resource.MustParse(n.GetAllocatable()["cpu"])
				gotPods := resource.MustParse(n.GetAllocatable()["pods"])
				return got.Cmp(wantCPU) == 0 && gotPods.Value() == wantPods
			}
		}
		foreign("foreign-1", "100m")
		waitNode(t, rt, nodeGood, allocatable("100m", 1))

		podD := hubPod("pod-d", hubNS, nodeGood, corev1.Container{
			Name: "main", Image: image, Command: []string{"sleep", "3600"},
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m")}},
		})
		if _, err := rt.CreatePod(ctx, createRequest(t, nodeGood, podD, nil, nil)); err != nil {
			t.Fatal(err)
		}
		defer func() {
			if _, err := rt.DeletePod(ctx, &runtimev1.DeletePodRequest{Node: nodeGood, Pod: &runtimev1.PodRef{Uid: string(podD.UID)}}); err != nil {
				t.Error(err)
			}
		}()
		watch.waitFor(t, "pod-d running", func(ps *runtimev1.PodStatus, st *corev1.PodStatus) bool {
			return ps.GetPod().GetUid() == string(podD.UID) && st.Phase == corev1.PodRunning
		})
		// Bound after pod-d, so seen after it: once it counts, pod-d has
		// been seen too, and must not count.
		foreign("foreign-2", "50m")
		waitNode(t, rt, nodeGood, allocatable("150m", 2))
	})

	t.Run("CreatePodAgain", func(t *testing.T) {
		if _, err := rt.CreatePod(ctx, createRequest(t, nodeGood, podA, []*corev1.ConfigMap{cm}, []*corev1.Secret{secret})); err != nil {
			t.Fatalf("CreatePod repeated: %v", err)
		}
		again, err := member.CoreV1().Pods(hubNS).Get(ctx, "pod-a", metav1.GetOptions{})
		if err != nil || again.UID != memberA.UID {
			t.Fatalf("member pod after a repeated CreatePod: %v (uid %s, was %s)", err, again.GetUID(), memberA.UID)
		}
		changed := podA.DeepCopy()
		changed.Labels["tier"] = "front"
		changed.Annotations["example.com/note"] = "changed"
		if _, err := rt.CreatePod(ctx, createRequest(t, nodeGood, changed, []*corev1.ConfigMap{cm}, []*corev1.Secret{secret})); err != nil {
			t.Fatalf("CreatePod with new labels: %v", err)
		}
		again, err = member.CoreV1().Pods(hubNS).Get(ctx, "pod-a", metav1.GetOptions{})
		if err != nil || again.UID != memberA.UID || again.Labels["tier"] != "front" || again.Annotations["example.com/note"] != "changed" {
			t.Errorf("member pod after CreatePod with new labels: %v, uid %s, labels %v, annotations %v", err, again.GetUID(), again.GetLabels(), again.GetAnnotations())
		}

		other := podA.DeepCopy()
		other.UID = uuid.NewUUID()
		_, err = rt.CreatePod(ctx, createRequest(t, nodeGood, other, nil, nil))
		if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "pod-a") {
			t.Errorf("CreatePod of another pod of the same name = %v, want FailedPrecondition naming it", err)
		}
	})

	t.Run("ListPods", func(t *testing.T) {
		checkListed(t, rt, string(podA.UID), hubNS, "pod-a")
	})

	t.Run("Logs", func(t *testing.T) {
		out, err := readLogs(ctx, rt, &runtimev1.ContainerLogsRequest{Node: nodeGood, PodUid: string(podA.UID), Container: "main", TailLines: -1})
		if err != nil || out != "hello from main\n" {
			t.Errorf("logs = %q, %v", out, err)
		}
		out, err = readLogs(ctx, rt, &runtimev1.ContainerLogsRequest{Node: nodeGood, PodUid: string(podA.UID), Container: "main", TailLines: -1, Timestamps: true})
		if err != nil || !strings.HasSuffix(out, " hello from main\n") || !strings.HasPrefix(out, "20") {
			t.Errorf("logs with timestamps = %q, %v", out, err)
		}
		_, err = readLogs(ctx, rt, &runtimev1.ContainerLogsRequest{Node: nodeGood, PodUid: string(podA.UID), Container: "nope", TailLines: -1})
		if status.Code(err) != codes.NotFound {
			t.Errorf("logs of an unknown container = %v, want NotFound", err)
		}
	})

	t.Run("Exec", func(t *testing.T) {
		stdout, stderr, code, err := execIn(ctx, rt, &runtimev1.ExecStart{
			Node: nodeGood, PodUid: string(podA.UID), Container: "main",
			Command: []string{"sh", "-c", `echo "$FROM_CM $FROM_SECRET"; echo to-stderr >&2; exit 3`},
		}, nil)
		if err != nil || stdout != "hello-from-cm s3cret\n" || stderr != "to-stderr\n" || code != 3 {
			t.Errorf("exec: stdout %q, stderr %q, exit %d, %v", stdout, stderr, code, err)
		}
		stdout, _, code, err = execIn(ctx, rt, &runtimev1.ExecStart{
			Node: nodeGood, PodUid: string(podA.UID), Container: "main", Stdin: true, Command: []string{"wc", "-c"},
		}, []byte("12345"))
		if err != nil || strings.TrimSpace(stdout) != "5" || code != 0 {
			t.Errorf("exec with stdin: stdout %q, exit %d, %v", stdout, code, err)
		}
		_, _, _, err = execIn(ctx, rt, &runtimev1.ExecStart{Node: nodeGood, PodUid: string(uuid.NewUUID()), Container: "main", Command: []string{"true"}}, nil)
		if status.Code(err) != codes.NotFound {
			t.Errorf("exec in an unknown pod = %v, want NotFound", err)
		}
	})

	t.Run("Attach", func(t *testing.T) {
		actx, cancel := context.WithTimeout(ctx, wait)
		defer cancel()
		s, err := rt.Attach(actx)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Send(&runtimev1.AttachRequest{Request: &runtimev1.AttachRequest_Start{Start: &runtimev1.AttachStart{
			Node: nodeGood, PodUid: string(podA.UID), Container: "talk", Stdin: true,
		}}}); err != nil {
			t.Fatal(err)
		}
		// Lines sent before the session is up may be lost to it: say it
		// until the container answers.
		got := make(chan error, 1)
		go func() {
			var out []byte
			for {
				resp, err := s.Recv()
				if err != nil {
					got <- err
					return
				}
				out = append(out, resp.GetStdout()...)
				if bytes.Contains(out, []byte("got:ping")) {
					got <- nil
					return
				}
			}
		}()
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for done := false; !done; {
			_ = s.Send(&runtimev1.AttachRequest{Request: &runtimev1.AttachRequest_Stdin{Stdin: []byte("ping\n")}})
			select {
			case err := <-got:
				if err != nil {
					t.Fatalf("attach: %v", err)
				}
				done = true
			case <-tick.C:
			case <-actx.Done():
				t.Fatal("attach: no answer from the container")
			}
		}

		s2, err := rt.Attach(ctx)
		if err != nil {
			t.Fatal(err)
		}
		_ = s2.Send(&runtimev1.AttachRequest{Request: &runtimev1.AttachRequest_Start{Start: &runtimev1.AttachStart{
			Node: nodeGood, PodUid: string(podA.UID), Container: "main", Stdin: true,
		}}})
		if _, err := s2.Recv(); status.Code(err) != codes.FailedPrecondition {
			t.Errorf("attach with stdin to a container without = %v, want FailedPrecondition", err)
		}
	})

	t.Run("PortForward", func(t *testing.T) {
		out, err := forward(ctx, rt, string(podA.UID), 8080, "GET /index.html HTTP/1.0\r\n\r\n")
		if err != nil || !strings.Contains(out, "hi-from-web") {
			t.Errorf("port-forward to 8080: %q, %v", out, err)
		}
		_, err = forward(ctx, rt, string(podA.UID), 9, "hello")
		if status.Code(err) != codes.Unavailable {
			t.Errorf("port-forward to a port nothing listens on = %v, want Unavailable", err)
		}
	})

	t.Run("ListPodsAfterRestart", func(t *testing.T) {
		p.kill(t)
		checkListed(t, rt, string(podA.UID), hubNS, "pod-a")
		if n := waitNode(t, rt, nodeGood, func(n *runtimev1.Node) bool { return n.GetReady() }); !n.GetReady() {
			t.Errorf("node not ready after the restart: %s", n.GetMessage())
		}
	})

	t.Run("Lost", func(t *testing.T) {
		w := watchPods(t, rt, nodeMapped)
		podC := hubPod("pod-c", hubNS, nodeMapped, corev1.Container{Name: "main", Image: image, Command: []string{"sleep", "3600"}})
		if _, err := rt.CreatePod(ctx, createRequest(t, nodeMapped, podC, nil, nil)); err != nil {
			t.Fatal(err)
		}
		mc, err := member.CoreV1().Pods(mappedNamespace).Get(ctx, "pod-c", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("pod-c in the mapped namespace: %v", err)
		}
		if mc.Labels[k8splugin.LabelOriginNamespace] != hubNS || mc.Labels[k8splugin.LabelNode] != nodeMapped {
			t.Errorf("pod-c labels %v", mc.Labels)
		}
		checkListed(t, rt, string(podC.UID), hubNS, "pod-c")
		zero := int64(0)
		if err := member.CoreV1().Pods(mappedNamespace).Delete(ctx, "pod-c", metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
			t.Fatal(err)
		}
		w.waitFor(t, "pod-c lost", func(ps *runtimev1.PodStatus, _ *corev1.PodStatus) bool {
			return ps.GetPod().GetUid() == string(podC.UID) && ps.GetLost()
		})
	})

	t.Run("DeletePod", func(t *testing.T) {
		w := watchPods(t, rt, nodeGood)
		podB := hubPod("pod-b", hubNS, nodeGood, corev1.Container{
			Name: "main", Image: image, Command: []string{"sleep", "3600"},
			EnvFrom: []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "app-config"}}}},
		})
		if _, err := rt.CreatePod(ctx, createRequest(t, nodeGood, podB, []*corev1.ConfigMap{cm}, nil)); err != nil {
			t.Fatal(err)
		}

		del := &runtimev1.DeletePodRequest{Node: nodeGood, Pod: &runtimev1.PodRef{Uid: string(podA.UID), Namespace: hubNS, Name: "pod-a"}, GracePeriodSeconds: 7}
		if _, err := rt.DeletePod(ctx, del); err != nil {
			t.Fatalf("DeletePod: %v", err)
		}
		got, err := member.CoreV1().Pods(hubNS).Get(ctx, "pod-a", metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
		case err != nil:
			t.Fatal(err)
		case got.DeletionTimestamp == nil || got.DeletionGracePeriodSeconds == nil || *got.DeletionGracePeriodSeconds != 7:
			t.Errorf("member pod deletion: timestamp %v, grace %v; want grace 7", got.DeletionTimestamp, got.DeletionGracePeriodSeconds)
		}
		if _, err := rt.DeletePod(ctx, del); err != nil {
			t.Errorf("DeletePod repeated: %v", err)
		}
		waitGone(t, "pod-a", func() error { _, err := member.CoreV1().Pods(hubNS).Get(ctx, "pod-a", metav1.GetOptions{}); return err })
		if _, err := rt.DeletePod(ctx, del); err != nil {
			t.Errorf("DeletePod of a pod gone: %v", err)
		}

		// The Secret only pod-a used goes; the ConfigMap pod-b uses stays.
		waitGone(t, "Secret app-secret", func() error {
			_, err := member.CoreV1().Secrets(hubNS).Get(ctx, "app-secret", metav1.GetOptions{})
			return err
		})
		if _, err := member.CoreV1().ConfigMaps(hubNS).Get(ctx, "app-config", metav1.GetOptions{}); err != nil {
			t.Errorf("ConfigMap app-config, still used by pod-b: %v", err)
		}
		for _, ps := range w.seen() {
			if ps.GetPod().GetUid() == string(podA.UID) && ps.GetLost() {
				t.Errorf("pod-a, deleted as asked, was reported lost")
			}
		}

		if _, err := rt.DeletePod(ctx, &runtimev1.DeletePodRequest{Node: nodeGood, Pod: &runtimev1.PodRef{Uid: string(podB.UID)}, GracePeriodSeconds: 1}); err != nil {
			t.Fatal(err)
		}
		waitGone(t, "ConfigMap app-config", func() error {
			_, err := member.CoreV1().ConfigMaps(hubNS).Get(ctx, "app-config", metav1.GetOptions{})
			return err
		})
		list, err := rt.ListPods(ctx, &runtimev1.ListPodsRequest{Node: nodeGood})
		if err != nil {
			t.Fatal(err)
		}
		for _, ps := range list.GetPods() {
			if ps.GetPod().GetUid() == string(podA.UID) {
				t.Errorf("ListPods still lists pod-a")
			}
		}
	})
}

// hubPod is a pod as the hub has it once bound to the virtual node node:
// admitted (a service-account token volume, an owner) and scheduled.
func hubPod(name, namespace, node string, containers ...corev1.Container) *corev1.Pod {
	yes := true
	grace := int64(30)
	for i := range containers {
		containers[i].VolumeMounts = append(containers[i].VolumeMounts, corev1.VolumeMount{
			Name: "kube-api-access-hub01", MountPath: "/var/run/secrets/kubernetes.io/serviceaccount", ReadOnly: true,
		})
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: namespace, UID: uuid.NewUUID(),
			Labels:          map[string]string{"app": name},
			Annotations:     map[string]string{"example.com/note": "from the hub"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: name + "-rs", UID: uuid.NewUUID(), Controller: &yes}},
		},
		Spec: corev1.PodSpec{
			NodeName:                      node,
			NodeSelector:                  map[string]string{k8splugin.LabelMember: node},
			ServiceAccountName:            "default",
			TerminationGracePeriodSeconds: &grace,
			Tolerations: []corev1.Toleration{{
				Key: k8splugin.TaintProvider, Operator: corev1.TolerationOpEqual, Value: "fedlet", Effect: corev1.TaintEffectNoSchedule,
			}},
			Volumes: []corev1.Volume{{Name: "kube-api-access-hub01", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
				Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token"}}},
			}}}},
			Containers: containers,
		},
	}
}

func createRequest(t *testing.T, node string, pod *corev1.Pod, cms []*corev1.ConfigMap, secrets []*corev1.Secret) *runtimev1.CreatePodRequest {
	t.Helper()
	raw, err := pod.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	req := &runtimev1.CreatePodRequest{Node: node, PodObject: raw}
	for _, cm := range cms {
		b, err := cm.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		req.ConfigMaps = append(req.ConfigMaps, b)
	}
	for _, s := range secrets {
		b, err := s.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		req.Secrets = append(req.Secrets, b)
	}
	return req
}

// powerlessToken is a token of a service account the member authenticates
// and lets do nothing.
func powerlessToken(t *testing.T, member kubernetes.Interface) string {
	t.Helper()
	ctx := context.Background()
	if _, err := member.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "fed-sa"}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	if _, err := member.CoreV1().ServiceAccounts("fed-sa").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "powerless"}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	seconds := int64(3600)
	tr, err := member.CoreV1().ServiceAccounts("fed-sa").CreateToken(ctx, "powerless", &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &seconds}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return tr.Status.Token
}

func checkOrigin(t *testing.T, what string, labels map[string]string, namespace, name, uid string) {
	t.Helper()
	want := map[string]string{
		k8splugin.LabelOriginCluster: origin, k8splugin.LabelOriginNamespace: namespace,
		k8splugin.LabelOriginName: name, k8splugin.LabelOriginUID: uid, k8splugin.LabelNode: nodeGood,
	}
	for k, v := range want {
		if labels[k] != v {
			t.Errorf("%s %s: label %s = %q, want %q", what, name, k, labels[k], v)
		}
	}
}

// olderThan compares two resource versions of one API server (kine's are
// numbers, as etcd's).
func olderThan(a, b string) bool {
	return len(a) < len(b) || len(a) == len(b) && a < b
}

func allRunning(st *corev1.PodStatus) bool {
	if len(st.ContainerStatuses) == 0 {
		return false
	}
	for _, cs := range st.ContainerStatuses {
		if cs.State.Running == nil {
			return false
		}
	}
	return true
}

func decodeStatus(t *testing.T, ps *runtimev1.PodStatus) *corev1.PodStatus {
	t.Helper()
	st := &corev1.PodStatus{}
	if err := st.Unmarshal(ps.GetStatus()); err != nil {
		t.Fatalf("decode status: %v", err)
	}
	return st
}

// waitNode asks GetNode until ok says yes, and returns the last answer.
func waitNode(t *testing.T, rt runtimev1.RuntimeClient, node string, ok func(*runtimev1.Node) bool) *runtimev1.Node {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		n, err := rt.GetNode(context.Background(), &runtimev1.GetNodeRequest{Node: node})
		if err == nil && ok(n) {
			return n
		}
		if time.Now().After(deadline) {
			t.Fatalf("GetNode(%s) = %v, %v: not as wanted within %v", node, n, err, wait)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// waitGone waits until get says NotFound.
func waitGone(t *testing.T, what string, get func() error) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		err := get()
		if apierrors.IsNotFound(err) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still there after %v (%v)", what, wait, err)
		}
		time.Sleep(time.Second)
	}
}

func checkListed(t *testing.T, rt runtimev1.RuntimeClient, uid, namespace, name string) {
	t.Helper()
	var list *runtimev1.ListPodsResponse
	var err error
	deadline := time.Now().Add(wait)
	for {
		list, err = rt.ListPods(context.Background(), &runtimev1.ListPodsRequest{Node: nodeOf(name)})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ListPods: %v", err)
		}
		time.Sleep(time.Second)
	}
	for _, ps := range list.GetPods() {
		if ps.GetPod().GetUid() == uid {
			if ps.GetPod().GetNamespace() != namespace || ps.GetPod().GetName() != name {
				t.Errorf("ListPods names %s as %v, want %s/%s", uid, ps.GetPod(), namespace, name)
			}
			decodeStatus(t, ps)
			return
		}
	}
	t.Errorf("ListPods does not list %s/%s (%s): %v", namespace, name, uid, list.GetPods())
}

// nodeOf is the node the test put a pod on.
func nodeOf(name string) string {
	if name == "pod-c" {
		return nodeMapped
	}
	return nodeGood
}

// podWatch follows WatchPods of a node for the rest of the test.
type podWatch struct {
	mu     sync.Mutex
	all    []*runtimev1.PodStatus
	notify chan struct{}
	err    error
}

func watchPods(t *testing.T, rt runtimev1.RuntimeClient, node string) *podWatch {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	s, err := rt.WatchPods(ctx, &runtimev1.WatchPodsRequest{Node: node})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Header(); err != nil {
		t.Fatalf("WatchPods headers: %v", err)
	}
	w := &podWatch{notify: make(chan struct{}, 1)}
	go func() {
		for {
			ps, err := s.Recv()
			w.mu.Lock()
			if err != nil {
				w.err = err
			} else {
				w.all = append(w.all, ps)
			}
			w.mu.Unlock()
			select {
			case w.notify <- struct{}{}:
			default:
			}
			if err != nil {
				return
			}
		}
	}()
	return w
}

func (w *podWatch) seen() []*runtimev1.PodStatus {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]*runtimev1.PodStatus(nil), w.all...)
}

// waitFor waits for a status that ok accepts.
func (w *podWatch) waitFor(t *testing.T, what string, ok func(*runtimev1.PodStatus, *corev1.PodStatus) bool) *runtimev1.PodStatus {
	t.Helper()
	timeout := time.After(wait)
	next := 0
	for {
		w.mu.Lock()
		batch, err := w.all[next:], w.err
		next = len(w.all)
		w.mu.Unlock()
		for _, ps := range batch {
			if ok(ps, decodeStatus(t, ps)) {
				return ps
			}
		}
		if err != nil {
			t.Fatalf("waiting for %s: the watch ended: %v", what, err)
		}
		select {
		case <-w.notify:
		case <-timeout:
			t.Fatalf("waiting for %s: not seen within %v", what, wait)
		}
	}
}

func readLogs(ctx context.Context, rt runtimev1.RuntimeClient, req *runtimev1.ContainerLogsRequest) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	s, err := rt.ContainerLogs(ctx, req)
	if err != nil {
		return "", err
	}
	var out []byte
	for {
		chunk, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return string(out), nil
		}
		if err != nil {
			return string(out), err
		}
		out = append(out, chunk.GetData()...)
	}
}

func execIn(ctx context.Context, rt runtimev1.RuntimeClient, start *runtimev1.ExecStart, stdin []byte) (stdout, stderr string, code int32, err error) {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	s, err := rt.Exec(ctx)
	if err != nil {
		return "", "", 0, err
	}
	if err := s.Send(&runtimev1.ExecRequest{Request: &runtimev1.ExecRequest_Start{Start: start}}); err != nil {
		return "", "", 0, err
	}
	if start.GetStdin() {
		_ = s.Send(&runtimev1.ExecRequest{Request: &runtimev1.ExecRequest_Stdin{Stdin: stdin}})
		_ = s.Send(&runtimev1.ExecRequest{Request: &runtimev1.ExecRequest_StdinDone{StdinDone: true}})
	}
	var o, e []byte
	for {
		resp, err := s.Recv()
		if err != nil {
			return string(o), string(e), 0, err
		}
		switch r := resp.Response.(type) {
		case *runtimev1.ExecResponse_Stdout:
			o = append(o, r.Stdout...)
		case *runtimev1.ExecResponse_Stderr:
			e = append(e, r.Stderr...)
		case *runtimev1.ExecResponse_ExitCode:
			return string(o), string(e), r.ExitCode, nil
		}
	}
}

// forward sends request to a port of the pod, half-closes, and reads the
// answer until the connection ends.
func forward(ctx context.Context, rt runtimev1.RuntimeClient, uid string, port int32, request string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	s, err := rt.PortForward(ctx)
	if err != nil {
		return "", err
	}
	for _, req := range []*runtimev1.PortForwardRequest{
		{Request: &runtimev1.PortForwardRequest_Start{Start: &runtimev1.PortForwardStart{Node: nodeGood, PodUid: uid, Port: port}}},
		{Request: &runtimev1.PortForwardRequest_Data{Data: []byte(request)}},
		{Request: &runtimev1.PortForwardRequest_DataDone{DataDone: true}},
	} {
		if err := s.Send(req); err != nil {
			break // the plugin ended the call: Recv says why
		}
	}
	var out []byte
	for {
		resp, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return string(out), nil
		}
		if err != nil {
			return string(out), err
		}
		out = append(out, resp.GetData()...)
	}
}
