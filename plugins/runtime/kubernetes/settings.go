package kubernetes

import (
	"bytes"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// Keys of a node's settings (ConfigureRequest.node_settings): what a
// member added with `fedlet member add` keeps in its Secret.
const (
	// SettingKubeconfig is the member's kubeconfig, whole (required).
	SettingKubeconfig = "kubeconfig"
	// SettingNamespace is the member namespace of every pod of the node,
	// as MemberConfig.Namespace (optional).
	SettingNamespace = "namespace"
)

// memberFromSettings is the member of a node whose settings came with
// Configure rather than in the config file.
func memberFromSettings(node string, s *runtimev1.NodeSettings) (MemberConfig, error) {
	field := fmt.Sprintf("node_settings[%s]", node)
	mc := MemberConfig{
		Node: node, KubeconfigData: s.GetData()[SettingKubeconfig], Namespace: string(s.GetData()[SettingNamespace]),
		field: field + "." + SettingKubeconfig,
	}
	for key := range s.GetData() {
		if key != SettingKubeconfig && key != SettingNamespace {
			return MemberConfig{}, fmt.Errorf("%s: unknown key %q (known: %s, %s)", field, key, SettingKubeconfig, SettingNamespace)
		}
	}
	if errs := validation.IsValidLabelValue(node); len(errs) > 0 {
		return MemberConfig{}, fmt.Errorf("%s: node name %q is not a valid label value: %s", field, node, strings.Join(errs, "; "))
	}
	if len(bytes.TrimSpace(mc.KubeconfigData)) == 0 {
		return MemberConfig{}, fmt.Errorf("%s.%s: must be set", field, SettingKubeconfig)
	}
	if mc.Namespace != "" {
		if errs := validation.IsDNS1123Label(mc.Namespace); len(errs) > 0 {
			return MemberConfig{}, fmt.Errorf("%s.%s: %q is not a namespace name: %s", field, SettingNamespace, mc.Namespace, strings.Join(errs, "; "))
		}
	}
	return mc, nil
}

// sameMember says whether a member built from a can keep serving b's node.
func sameMember(a, b MemberConfig) bool {
	return a.Node == b.Node && a.Kubeconfig == b.Kubeconfig && a.Namespace == b.Namespace && bytes.Equal(a.KubeconfigData, b.KubeconfigData)
}

// credentials names where the member's kubeconfig came from, for messages.
func (c MemberConfig) credentials() string {
	if c.Kubeconfig != "" {
		return c.Kubeconfig
	}
	return "the kubeconfig given for node " + c.Node
}
