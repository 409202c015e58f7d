package cluster

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Names of the agent's RBAC objects and of the group its certificate carries.
const (
	AgentRole  = "fedlet-agent"
	AgentGroup = "fedlet:agents"
	leaseNS    = "kube-node-lease"
)

// agentClusterRole is what a kubelet needs cluster-wide; the agent is a
// kubelet, authorized by RBAC rather than the Node authorizer because its
// nodes are many and its identity is one.
func agentClusterRole() *rbacv1.ClusterRole {
	return &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: AgentRole},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"nodes", "nodes/status"},
				Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete"}},
			{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list", "watch", "delete"}},
			{APIGroups: []string{""}, Resources: []string{"pods/status"}, Verbs: []string{"update", "patch"}},
			{APIGroups: []string{"", "events.k8s.io"}, Resources: []string{"events"}, Verbs: []string{"create", "patch", "update"}},
			{APIGroups: []string{""}, Resources: []string{"configmaps", "secrets", "services"}, Verbs: []string{"get", "list", "watch"}},
			{APIGroups: []string{""}, Resources: []string{"serviceaccounts/token"}, Verbs: []string{"create"}},
			{APIGroups: []string{"authentication.k8s.io"}, Resources: []string{"tokenreviews"}, Verbs: []string{"create"}},
			{APIGroups: []string{"authorization.k8s.io"}, Resources: []string{"subjectaccessreviews"}, Verbs: []string{"create"}},
			// The kubernetes plugin reflects Services into members.
			{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, Verbs: []string{"get", "list", "watch"}},
		},
	}
}

// agentLeaseRole lets the agent keep its nodes' Leases, in their namespace only.
func agentLeaseRole() *rbacv1.Role {
	return &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: AgentRole, Namespace: leaseNS},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"get", "create", "update"}},
		},
	}
}

var agentSubjects = []rbacv1.Subject{{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: AgentGroup}}

// applyAgentRBAC creates the agent's roles and bindings, or updates them to
// what this version of fedlet wants.
func applyAgentRBAC(ctx context.Context, cs kubernetes.Interface) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: leaseNS}}
	if _, err := cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace %s: %w", leaseNS, err)
	}

	cr := cs.RbacV1().ClusterRoles()
	if err := apply(ctx, agentClusterRole(), cr.Create, cr.Get, cr.Update, func(have, want *rbacv1.ClusterRole) { have.Rules = want.Rules }); err != nil {
		return err
	}
	crb := cs.RbacV1().ClusterRoleBindings()
	if err := apply(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: AgentRole},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: AgentRole},
		Subjects:   agentSubjects,
	}, crb.Create, crb.Get, crb.Update, func(have, want *rbacv1.ClusterRoleBinding) { have.Subjects = want.Subjects }); err != nil {
		return err
	}
	r := cs.RbacV1().Roles(leaseNS)
	if err := apply(ctx, agentLeaseRole(), r.Create, r.Get, r.Update, func(have, want *rbacv1.Role) { have.Rules = want.Rules }); err != nil {
		return err
	}
	rb := cs.RbacV1().RoleBindings(leaseNS)
	return apply(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: AgentRole, Namespace: leaseNS},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: AgentRole},
		Subjects:   agentSubjects,
	}, rb.Create, rb.Get, rb.Update, func(have, want *rbacv1.RoleBinding) { have.Subjects = want.Subjects })
}

// apply creates want, or, when it exists, copies want's content into the
// stored object and updates it. (A binding's roleRef never changes here, and
// cannot be updated anyway.)
func apply[T metav1.Object](
	ctx context.Context, want T,
	create func(context.Context, T, metav1.CreateOptions) (T, error),
	get func(context.Context, string, metav1.GetOptions) (T, error),
	update func(context.Context, T, metav1.UpdateOptions) (T, error),
	merge func(have, want T),
) error {
	what := fmt.Sprintf("%T %s", want, want.GetName())
	_, err := create(ctx, want, metav1.CreateOptions{})
	if err == nil {
		return nil
	}
	if !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create %s: %w", what, err)
	}
	have, err := get(ctx, want.GetName(), metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("get %s: %w", what, err)
	}
	merge(have, want)
	if _, err := update(ctx, have, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("update %s: %w", what, err)
	}
	return nil
}
