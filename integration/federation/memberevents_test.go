package federation

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
)

// TestMemberEventsReachTheHubPod: what the member records about the pod
// (its scheduler's Scheduled, naming the member's own node; its node's
// Pulled and Started) appears on the hub's pod.
func TestMemberEventsReachTheHubPod(t *testing.T) {
	ns := namespace(t)
	ctx := context.Background()
	p := sleeper("watched")
	toMember(&p.Spec)
	if _, err := hub.Client().CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitRunning(t, ns, p.Name, member.Name())

	want := map[string]string{
		// Only the member's scheduler knows the member's node.
		"Scheduled": "to " + member.NodeName(),
		"Pulled":    "Successfully pulled image",
		"Started":   "",
	}
	poll(t, time.Minute, "the member's events on the hub pod", func(ctx context.Context) (bool, string) {
		list, err := hub.Client().CoreV1().Events(ns).List(ctx, metav1.ListOptions{
			FieldSelector: fields.OneTermEqualSelector("involvedObject.name", p.Name).String(),
		})
		if err != nil {
			return false, err.Error()
		}
		var seen []string
		found := 0
		for _, e := range list.Items {
			seen = append(seen, fmt.Sprintf("%s %s: %s (%s on %s)", e.Type, e.Reason, e.Message, e.Source.Component, e.Source.Host))
			if part, ok := want[e.Reason]; ok && strings.Contains(e.Message, part) && e.Source.Host == member.Name() {
				found++
			}
		}
		return found == len(want), strings.Join(seen, "; ")
	})
}
