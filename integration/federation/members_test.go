package federation

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/fedlet/fedlet/core/config"
	"github.com/fedlet/fedlet/core/members"
)

// TestMemberAddListRemove adds a member at run time with `fedlet member
// add` (member-1's cluster once more, as the virtual node "extra", its
// pods in one namespace), runs a pod there, lists the members, refuses a
// member whose credentials the member refuses (its node says why), and
// removes both: the pod goes from the member, the nodes from the hub.
func TestMemberAddListRemove(t *testing.T) {
	ns := namespace(t)
	ctx := context.Background()
	const extra, broken, extraNS = "extra", "broken", "fed-extra"
	t.Cleanup(func() {
		for _, name := range []string{extra, broken} {
			_ = hub.Client().CoreV1().Secrets(config.DefaultMembersNamespace).Delete(context.Background(), name, metav1.DeleteOptions{})
			_ = hub.Client().CoreV1().Nodes().Delete(context.Background(), name, metav1.DeleteOptions{})
		}
		_ = member.Client().CoreV1().Namespaces().Delete(context.Background(), extraNS, metav1.DeleteOptions{})
	})

	out, err := fedlet(t, "member", "add", extra, "--kubeconfig", member.Kubeconfig(), "--namespace", extraNS)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "virtual node extra is Ready") {
		t.Errorf("member add printed %q, want the node Ready", out)
	}
	n, err := hub.Client().CoreV1().Nodes().Get(ctx, extra, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n.Labels[members.Label] != extra || !hasTaint(n, members.TaintKey) {
		t.Errorf("node %s: labels %v, taints %v; want %s=%s and the %s taint", extra, n.Labels, n.Spec.Taints, members.Label, extra, members.TaintKey)
	}

	p := sleeper("to-extra")
	toMember(&p.Spec)
	p.Spec.NodeSelector[members.Label] = extra
	if _, err := hub.Client().CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitRunning(t, ns, p.Name, extra)
	inMember, err := member.Client().CoreV1().Pods(extraNS).Get(ctx, p.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the pod in the member's namespace %s: %v", extraNS, err)
	}
	if inMember.Labels[originNode] != extra || inMember.Status.Phase != corev1.PodRunning {
		t.Errorf("member pod %s: node label %q, want %q; %s", inMember.Name, inMember.Labels[originNode], extra, describePod(inMember))
	}

	t.Run("refused credentials", func(t *testing.T) {
		bad := kubeconfigWithToken(t, member.Kubeconfig(), "a-token-the-member-never-issued")
		out, err := fedlet(t, "member", "add", broken, "--kubeconfig", bad, "--wait", "30s")
		if err == nil || !strings.Contains(err.Error(), "MemberUnauthorized") {
			t.Errorf("member add with a refused token: %v (output %q), want a failure naming MemberUnauthorized", err, out)
		}
		n, err := hub.Client().CoreV1().Nodes().Get(ctx, broken, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if c := nodeCondition(n, corev1.NodeReady); c == nil || c.Status != corev1.ConditionFalse || c.Reason != "MemberUnauthorized" {
			t.Errorf("node %s Ready %+v, want False MemberUnauthorized", broken, c)
		}
		for _, other := range []string{member.Name(), extra} {
			n, err := hub.Client().CoreV1().Nodes().Get(ctx, other, metav1.GetOptions{})
			if err != nil || nodeCondition(n, corev1.NodeReady).Status != corev1.ConditionTrue {
				t.Errorf("node %s is not Ready beside a broken member (%v)", other, err)
			}
		}
	})

	t.Run("list", func(t *testing.T) {
		out, err := fedlet(t, "member", "list")
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range [][]string{
			{member.Name(), "config", "True", "KubeletReady"},
			{extra, "secret", "True", "KubeletReady", "1"},
			{broken, "secret", "False", "MemberUnauthorized", "0"},
		} {
			if !hasRow(out, want) {
				t.Errorf("member list has no row %v:\n%s", want, out)
			}
		}
	})

	for _, name := range []string{extra, broken} {
		if _, err := fedlet(t, "member", "remove", name, "--timeout", "2m"); err != nil {
			t.Fatal(err)
		}
		if _, err := hub.Client().CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("node %s after member remove: %v, want it gone", name, err)
		}
	}
	if _, err := hub.Client().CoreV1().Pods(ns).Get(ctx, p.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("hub pod %s after member remove: %v, want it gone", p.Name, err)
	}
	if _, err := member.Client().CoreV1().Pods(extraNS).Get(ctx, p.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("member pod %s/%s after member remove: %v, want it gone", extraNS, p.Name, err)
	}
	if _, err := fedlet(t, "member", "remove", member.Name()); err == nil || !strings.Contains(err.Error(), "config file") {
		t.Errorf("member remove of a member of the agent's config file: %v, want a refusal naming the config file", err)
	}
}

// fedlet runs the fedlet CLI built beside kubectl against the hub.
func fedlet(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	bin := filepath.Join(filepath.Dir(hub.Kubectl()), "fedlet")
	cmd := exec.CommandContext(ctx, bin, append(args, "--hub-kubeconfig", hub.Kubeconfig())...)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("fedlet %s: %w: %s", strings.Join(args, " "), err, stderr.String())
	}
	return out.String(), nil
}

// kubeconfigWithToken writes a copy of the kubeconfig at from whose user
// is the bearer token.
func kubeconfigWithToken(t *testing.T, from, token string) string {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(from)
	if err != nil {
		t.Fatal(err)
	}
	u := cfg.AuthInfos[cfg.Contexts[cfg.CurrentContext].AuthInfo]
	u.ClientCertificate, u.ClientKey, u.ClientCertificateData, u.ClientKeyData = "", "", nil, nil
	u.Token = token
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// hasRow says whether a line of the table has exactly these first fields.
func hasRow(table string, fields []string) bool {
	for _, line := range strings.Split(table, "\n") {
		f := strings.Fields(line)
		if len(f) >= len(fields) && strings.Join(f[:len(fields)], " ") == strings.Join(fields, " ") {
			return true
		}
	}
	return false
}
