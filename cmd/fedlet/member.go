package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/fedlet/fedlet/core/config"
	"github.com/fedlet/fedlet/core/members"
	"github.com/fedlet/fedlet/integration/cluster"
)

// memberFlags are what every member command needs: the hub, and where its
// members are kept.
type memberFlags struct {
	hubKubeconfig string
	namespace     string
}

func newMemberCommand() *cobra.Command {
	var f memberFlags
	cmd := &cobra.Command{
		Use:   "member",
		Short: "Add, list and remove the member clusters of a hub",
		Long: `A member cluster is a whole Kubernetes cluster behind one virtual node of the
hub: pods the hub binds to that node run in the member. Its credentials are a
kubeconfig kept in a Secret of the hub (namespace fedlet-system by default);
an agent configured with "members" serves one virtual node per Secret, named
after the member, labelled fedlet.io/member=NAME and tainted
virtual-kubelet.io/provider=fedlet:NoSchedule.

The hub is reached with --hub-kubeconfig, else $KUBECONFIG, else
~/.kube/config, else the admin kubeconfig of 'fedlet up' in its default data
directory.`,
		Args: cobra.NoArgs,
	}
	cmd.PersistentFlags().StringVar(&f.hubKubeconfig, "hub-kubeconfig", "", "kubeconfig of the hub's API server")
	cmd.PersistentFlags().StringVar(&f.namespace, "members-namespace", config.DefaultMembersNamespace, "namespace of the hub that keeps the members' Secrets (the agent's members.namespace)")
	cmd.AddCommand(newMemberAddCommand(&f), newMemberListCommand(&f), newMemberRemoveCommand(&f))
	return cmd
}

func newMemberAddCommand(f *memberFlags) *cobra.Command {
	var (
		kubeconfig, namespace string
		timeout               time.Duration
	)
	cmd := &cobra.Command{
		Use:   "add NAME --kubeconfig FILE",
		Short: "Add a member cluster, or give it new credentials",
		Long: `Store the member's kubeconfig in the hub, then wait until its virtual node is
Ready and print it. When the node is not Ready in time its condition says why
(MemberUnreachable, MemberUnauthorized, MemberForbidden, MemberUntrusted),
and the command fails; the member stays added, so that a fixed kubeconfig is
given with 'add' again.

The kubeconfig's credentials need, in the member: get, list and watch on nodes
and pods, list and watch on events; get, create, update and delete on pods, configmaps and secrets; get
and create on namespaces; get on pods/log and create on pods/exec,
pods/attach and pods/portforward.`,
		Example: `  fedlet member add member-2 --kubeconfig member-2.kubeconfig
  fedlet member add edge --kubeconfig edge.kubeconfig --namespace from-hub`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if kubeconfig == "" {
				return errors.New("--kubeconfig: required: the member API server's kubeconfig file")
			}
			data, err := selfContained(kubeconfig)
			if err != nil {
				return fmt.Errorf("--kubeconfig: %w", err)
			}
			m := members.Member{Name: args[0], Kubeconfig: data, Namespace: namespace}
			if err := m.Validate(); err != nil {
				return err
			}
			hub, err := f.hub()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if err := putMember(ctx, hub, f.namespace, m); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "member %s stored in Secret %s/%s; waiting for its virtual node\n", m.Name, f.namespace, m.Name)
			return waitMemberReady(ctx, hub, m.Name, timeout, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig file of the member's API server (its current context is used)")
	cmd.Flags().StringVar(&namespace, "namespace", "", "member namespace for every pod of the node (default: each pod's namespace on the hub)")
	cmd.Flags().DurationVar(&timeout, "wait", time.Minute, "how long to wait for the virtual node to be Ready")
	return cmd
}

func newMemberListCommand(f *memberFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the member clusters and their virtual nodes",
		Long: `List every member: those added with 'fedlet member add' (source "secret") and
those in an agent's config file (source "config"), with the virtual node's
Ready condition and reason, and the hub's pods bound to it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			hub, err := f.hub()
			if err != nil {
				return err
			}
			return listMembers(cmd.Context(), hub, f.namespace, cmd.OutOrStdout())
		},
	}
}

func newMemberRemoveCommand(f *memberFlags) *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "remove NAME",
		Short: "Remove a member cluster, after its pods",
		Long: `Cordon the member's virtual node, delete the hub's pods bound to it (each with
its grace period: the agent deletes them in the member) and wait until they
are gone, then delete the member's Secret: the agent stops serving the node
and deletes it. Nothing is left running in the member.

A member of an agent's config file is removed there, not with this command.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			hub, err := f.hub()
			if err != nil {
				return err
			}
			return removeMember(cmd.Context(), hub, f.namespace, args[0], timeout, cmd.OutOrStdout())
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Minute, "how long to wait for the member's pods, then its node, to go")
	return cmd
}

// hub is a client of the hub's API server.
func (f *memberFlags) hub() (kubernetes.Interface, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	switch {
	case f.hubKubeconfig != "":
		rules.ExplicitPath = f.hubKubeconfig
	case os.Getenv(clientcmd.RecommendedConfigPathEnvVar) == "" && !exists(clientcmd.RecommendedHomeFile):
		if dir, err := cluster.DefaultDataDir(); err == nil && exists(filepath.Join(dir, "kubeconfig")) {
			rules.ExplicitPath = filepath.Join(dir, "kubeconfig")
		}
	}
	rc, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, nil).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("the hub's kubeconfig (--hub-kubeconfig, $KUBECONFIG or ~/.kube/config): %w", err)
	}
	return kubernetes.NewForConfig(rc)
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// selfContained is the kubeconfig file's current context alone, with the
// files it refers to (certificates, keys, CA) read into it: the Secret is
// all the agent gets.
func selfContained(path string) ([]byte, error) {
	cfg, err := clientcmd.LoadFromFile(path)
	if err != nil {
		return nil, err
	}
	if err := clientcmdapi.MinifyConfig(cfg); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := clientcmdapi.FlattenConfig(cfg); err != nil {
		return nil, fmt.Errorf("%s: read the files it names: %w", path, err)
	}
	return clientcmd.Write(*cfg)
}

// putMember creates the member's Secret, or replaces its content.
func putMember(ctx context.Context, hub kubernetes.Interface, namespace string, m members.Member) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}
	if _, err := hub.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace %s: %w", namespace, err)
	}
	want := m.Secret(namespace)
	secrets := hub.CoreV1().Secrets(namespace)
	_, err := secrets.Create(ctx, want, metav1.CreateOptions{})
	if !apierrors.IsAlreadyExists(err) {
		if err != nil {
			return fmt.Errorf("create Secret %s/%s: %w", namespace, m.Name, err)
		}
		return nil
	}
	have, err := secrets.Get(ctx, m.Name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("get Secret %s/%s: %w", namespace, m.Name, err)
	}
	if have.Type != members.SecretType {
		return fmt.Errorf("secret %s/%s exists and is not a member's (type %q): choose another name", namespace, m.Name, have.Type)
	}
	have.Labels, have.Data = want.Labels, want.Data
	if _, err := secrets.Update(ctx, have, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("update Secret %s/%s: %w", namespace, m.Name, err)
	}
	return nil
}

// waitMemberReady waits for the member's virtual node to be Ready and
// prints its Ready condition; it fails with that condition if it is not.
func waitMemberReady(ctx context.Context, hub kubernetes.Interface, name string, timeout time.Duration, out io.Writer) error {
	var last *corev1.NodeCondition
	err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		n, err := hub.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		last = readyCondition(n)
		return last != nil && last.Status == corev1.ConditionTrue, nil
	})
	switch {
	case err == nil:
		fmt.Fprintf(out, "virtual node %s is Ready: %s\n", name, last.Message)
		return nil
	case last == nil:
		return fmt.Errorf("no virtual node %s within %s: does an agent serve the members (its config's members.runtime)?", name, timeout)
	}
	return fmt.Errorf("virtual node %s is not Ready within %s: Ready=%s %s: %s", name, timeout, last.Status, last.Reason, last.Message)
}

// listMembers prints the members, from their Secrets and their nodes.
func listMembers(ctx context.Context, hub kubernetes.Interface, namespace string, out io.Writer) error {
	secrets, err := hub.CoreV1().Secrets(namespace).List(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("type", string(members.SecretType)).String(),
	})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("list member Secrets in %s: %w", namespace, err)
	}
	nodes, err := hub.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: members.Label})
	if err != nil {
		return fmt.Errorf("list virtual nodes: %w", err)
	}
	type row struct{ source, server string }
	rows := map[string]*row{}
	for _, s := range secrets.Items {
		r := &row{source: "secret", server: "?"}
		if m, err := members.FromSecret(&s); err != nil {
			r.server = "invalid: " + err.Error()
		} else if rc, err := clientcmd.RESTConfigFromKubeConfig(m.Kubeconfig); err == nil {
			r.server = rc.Host
		}
		rows[s.Name] = r
	}
	byName := map[string]*corev1.Node{}
	for i := range nodes.Items {
		n := &nodes.Items[i]
		byName[n.Name] = n
		if rows[n.Name] == nil {
			rows[n.Name] = &row{source: "config", server: "-"}
		}
	}
	names := make([]string, 0, len(rows))
	for name := range rows {
		names = append(names, name)
	}
	slices.Sort(names)

	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSOURCE\tREADY\tREASON\tPODS\tSERVER")
	for _, name := range names {
		ready, reason, pods := "NoNode", "-", "-"
		if n := byName[name]; n != nil {
			if c := readyCondition(n); c != nil {
				ready, reason = string(c.Status), c.Reason
			}
			list, err := hub.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("spec.nodeName", name).String()})
			if err == nil {
				pods = fmt.Sprint(len(list.Items))
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", name, rows[name].source, ready, reason, pods, rows[name].server)
	}
	return tw.Flush()
}

// removeMember drains the member's virtual node, then deletes its Secret
// and waits for the agent to delete the node.
func removeMember(ctx context.Context, hub kubernetes.Interface, namespace, name string, timeout time.Duration, out io.Writer) error {
	secret, err := hub.CoreV1().Secrets(namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		if _, nerr := hub.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{}); nerr == nil {
			return fmt.Errorf("member %s has no Secret in %s: it is in an agent's config file; remove it there", name, namespace)
		}
		return fmt.Errorf("no member %s (no Secret %s/%s)", name, namespace, name)
	}
	if err != nil {
		return fmt.Errorf("get Secret %s/%s: %w", namespace, name, err)
	}
	if secret.Type != members.SecretType {
		return fmt.Errorf("secret %s/%s is not a member's (type %q)", namespace, name, secret.Type)
	}

	cordon := []byte(`{"spec":{"unschedulable":true}}`)
	_, err = hub.CoreV1().Nodes().Patch(ctx, name, types.StrategicMergePatchType, cordon, metav1.PatchOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("cordon node %s: %w", name, err)
	}
	onNode := metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("spec.nodeName", name).String()}
	pods, err := hub.CoreV1().Pods("").List(ctx, onNode)
	if err != nil {
		return fmt.Errorf("list the pods of node %s: %w", name, err)
	}
	for _, p := range pods.Items {
		if err := hub.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete pod %s/%s: %w", p.Namespace, p.Name, err)
		}
	}
	fmt.Fprintf(out, "node %s cordoned; %d pods deleted, waiting for them to go from the member\n", name, len(pods.Items))
	left := 0
	err = wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		list, err := hub.CoreV1().Pods("").List(ctx, onNode)
		if err != nil {
			return false, nil
		}
		left = len(list.Items)
		return left == 0, nil
	})
	if err != nil {
		return fmt.Errorf("%d pods of node %s still there after %s; the member is kept (run remove again)", left, name, timeout)
	}

	if err := hub.CoreV1().Secrets(namespace).Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete Secret %s/%s: %w", namespace, name, err)
	}
	err = wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		_, err := hub.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	if err != nil {
		return fmt.Errorf("the Secret of member %s is deleted, but its node is still there after %s: is its agent running?", name, timeout)
	}
	fmt.Fprintf(out, "member %s removed\n", name)
	return nil
}

func readyCondition(n *corev1.Node) *corev1.NodeCondition {
	for i := range n.Status.Conditions {
		if n.Status.Conditions[i].Type == corev1.NodeReady {
			return &n.Status.Conditions[i]
		}
	}
	return nil
}
