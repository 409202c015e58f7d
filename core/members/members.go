// Package members keeps a hub's member clusters as Secrets in its API
// server: `fedlet member add` writes one, and an agent configured with
// `members` serves each as a virtual node (Watch).
package members

import (
	"bytes"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/tools/clientcmd"
)

// What marks a member's Secret and its virtual node.
const (
	// SecretType is the type of a member's Secret.
	SecretType corev1.SecretType = "fedlet.io/member"
	// Label is on the member's Secret and its virtual node, with the
	// member's name as value: pods select the member by it.
	Label = "fedlet.io/member"
	// TaintKey and TaintValue make the NoSchedule taint of every virtual
	// node: only pods that tolerate it land in a member.
	TaintKey   = "virtual-kubelet.io/provider"
	TaintValue = "fedlet"
)

// Keys of a member's Secret. They are handed to the runtime plugin as the
// node's settings, as they are.
const (
	// KeyKubeconfig is the member API server's kubeconfig, whole.
	KeyKubeconfig = "kubeconfig"
	// KeyNamespace, if present, is the member namespace all the node's pods
	// go to (else each pod's own namespace).
	KeyNamespace = "namespace"
)

// Member is one member cluster as a Secret holds it.
type Member struct {
	// Name is the member's name, its Secret's and its virtual node's.
	Name string
	// Kubeconfig reaches the member's API server.
	Kubeconfig []byte
	// Namespace, if set, is the member namespace of all the node's pods.
	Namespace string
}

// Validate checks the member as `fedlet member add` takes it: a node name,
// a kubeconfig with a current context, a namespace name.
func (m Member) Validate() error {
	if errs := validation.IsDNS1123Label(m.Name); len(errs) > 0 {
		return fmt.Errorf("member name %q: %s (it names the virtual node and a label value)", m.Name, strings.Join(errs, "; "))
	}
	if len(bytes.TrimSpace(m.Kubeconfig)) == 0 {
		return fmt.Errorf("member %s: the kubeconfig is empty", m.Name)
	}
	if _, err := clientcmd.RESTConfigFromKubeConfig(m.Kubeconfig); err != nil {
		return fmt.Errorf("member %s: the kubeconfig cannot be used: %w", m.Name, err)
	}
	if m.Namespace != "" {
		if errs := validation.IsDNS1123Label(m.Namespace); len(errs) > 0 {
			return fmt.Errorf("member %s: namespace %q: %s", m.Name, m.Namespace, strings.Join(errs, "; "))
		}
	}
	return nil
}

// Secret is the member's Secret, in namespace.
func (m Member) Secret(namespace string) *corev1.Secret {
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: m.Name, Namespace: namespace, Labels: map[string]string{Label: m.Name}},
		Type:       SecretType,
		Data:       map[string][]byte{KeyKubeconfig: m.Kubeconfig},
	}
	if m.Namespace != "" {
		s.Data[KeyNamespace] = []byte(m.Namespace)
	}
	return s
}

// FromSecret reads a member's Secret, refusing one that is not a valid
// member.
func FromSecret(s *corev1.Secret) (Member, error) {
	if s.Type != SecretType {
		return Member{}, fmt.Errorf("secret %s/%s is of type %q, not a member (%s)", s.Namespace, s.Name, s.Type, SecretType)
	}
	for key := range s.Data {
		if key != KeyKubeconfig && key != KeyNamespace {
			return Member{}, fmt.Errorf("secret %s/%s: unknown key %q (known: %s, %s)", s.Namespace, s.Name, key, KeyKubeconfig, KeyNamespace)
		}
	}
	m := Member{Name: s.Name, Kubeconfig: s.Data[KeyKubeconfig], Namespace: string(s.Data[KeyNamespace])}
	if err := m.Validate(); err != nil {
		return Member{}, fmt.Errorf("secret %s/%s: %w", s.Namespace, s.Name, err)
	}
	return m, nil
}

// Settings are the node settings the runtime plugin is given for the member.
func (m Member) Settings() map[string][]byte {
	return m.Secret("").Data
}

// NodeLabels are the labels of the member's virtual node.
func NodeLabels(name string) map[string]string { return map[string]string{Label: name} }

// NodeTaints are the taints of every member's virtual node.
func NodeTaints() []corev1.Taint {
	return []corev1.Taint{{Key: TaintKey, Value: TaintValue, Effect: corev1.TaintEffectNoSchedule}}
}
