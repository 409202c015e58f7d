package kubernetesplugin_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fedlet/fedlet/plugins/conformance"
	k8splugin "github.com/fedlet/fedlet/plugins/runtime/kubernetes"
)

// TestConformance runs the conformance kit against the plugin built from
// this tree, launched by the kit through the agent's plugin host, serving
// one virtual node of the shared member cluster: the kit chooses the
// whole-pod suite, and every check of it passes.
func TestConformance(t *testing.T) {
	c := memberCluster(t)
	member := c.Client()
	const (
		node      = "conformance-member"
		hub       = "conformance-hub"
		namespace = "conformance" // the kit's pods' namespace, kept in the member
	)
	cfg, err := json.Marshal(map[string]any{
		"origin":  hub,
		"members": []map[string]string{{"node": node, "kubeconfig": c.Kubeconfig()}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = member.CoreV1().Namespaces().Delete(context.Background(), namespace, metav1.DeleteOptions{})
	})
	logs := &lockedBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("plugin host and plugin log:\n%s", logs.String())
		}
	})

	res := conformance.Test(t, conformance.Config{
		Plugin:       filepath.Join(pluginDir(t), pluginName),
		PluginConfig: cfg,
		Node:         node,
		Image:        c.Image(),
		Timeout:      wait,
		Log:          slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if res.Suite != conformance.WholePodSuite {
		t.Errorf("the kit ran suite %q (%s), want %q", res.Suite, res.Why, conformance.WholePodSuite)
	}
	if len(res.Outcomes) != len(conformance.WholePodChecks()) {
		t.Errorf("%d checks ran, want all %d of the whole-pod suite", len(res.Outcomes), len(conformance.WholePodChecks()))
	}

	// Every check removed what it made: no pod of this hub is left in the
	// member, and the ConfigMaps and Secrets went with the pods using them.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	selector := metav1.ListOptions{LabelSelector: k8splugin.LabelOriginCluster + "=" + hub}
	pods, err := member.CoreV1().Pods(metav1.NamespaceAll).List(ctx, selector)
	if err != nil {
		t.Fatal(err)
	}
	for _, pod := range pods.Items {
		t.Errorf("member pod %s/%s (origin uid %s) left behind", pod.Namespace, pod.Name, pod.Labels[k8splugin.LabelOriginUID])
	}
	cms, err := member.CoreV1().ConfigMaps(metav1.NamespaceAll).List(ctx, selector)
	if err != nil {
		t.Fatal(err)
	}
	for _, cm := range cms.Items {
		t.Errorf("member ConfigMap %s/%s left behind", cm.Namespace, cm.Name)
	}
	secrets, err := member.CoreV1().Secrets(metav1.NamespaceAll).List(ctx, selector)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range secrets.Items {
		t.Errorf("member Secret %s/%s left behind", s.Namespace, s.Name)
	}
}
