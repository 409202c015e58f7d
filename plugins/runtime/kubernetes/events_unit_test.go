package kubernetes

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// The event handler sends what is new or counted again about the node's
// pods, and nothing of the first listing or of other pods.
func TestEventHandler(t *testing.T) {
	m := &member{
		events: newWatchHub[*runtimev1.PodEvent](),
		pods:   coreinformers.NewPodInformer(fake.NewClientset(), "", 0, cache.Indexers{}),
	}
	ours := &runtimev1.PodRef{Uid: "hub-uid", Namespace: "web", Name: "app"}
	m.created.add("member-uid", ours)
	w := m.events.add()
	h := m.eventHandler().(cache.ResourceEventHandlerDetailedFuncs)

	about := func(uid, reason string, count int32) *corev1.Event {
		return &corev1.Event{
			ObjectMeta:     metav1.ObjectMeta{Name: reason, Namespace: "web"},
			InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "web", Name: "app", UID: types.UID(uid)},
			Type:           corev1.EventTypeWarning, Reason: reason, Message: reason + " happened", Count: count,
			Source: corev1.EventSource{Component: "kubelet"},
		}
	}
	h.AddFunc(about("member-uid", "Pulled", 1), true)      // the first listing: history
	h.AddFunc(about("another-pod", "Scheduled", 0), false) // not the node's
	backOff := about("member-uid", "BackOff", 1)
	h.AddFunc(backOff, false)
	h.UpdateFunc(backOff, backOff) // a resync: nothing new
	again := backOff.DeepCopy()
	again.Count = 2
	h.UpdateFunc(backOff, again)
	// The scheduler's events count in their series.
	scheduled := about("member-uid", "FailedScheduling", 0)
	scheduled.Source, scheduled.ReportingController = corev1.EventSource{}, "default-scheduler"
	h.AddFunc(scheduled, false)
	more := scheduled.DeepCopy()
	more.Series = &corev1.EventSeries{Count: 3}
	h.UpdateFunc(scheduled, more)

	want := []string{"BackOff 1 kubelet", "BackOff 2 kubelet", "FailedScheduling 1 default-scheduler", "FailedScheduling 3 default-scheduler"}
	for _, w0 := range want {
		select {
		case ev := <-w.ch:
			got := fmt.Sprintf("%s %d %s", ev.GetReason(), ev.GetCount(), ev.GetSource())
			if got != w0 || ev.GetPod().GetUid() != "hub-uid" || ev.GetType() != corev1.EventTypeWarning || ev.GetMessage() != ev.GetReason()+" happened" {
				t.Errorf("sent %q about %v (%s %q), want %q about hub-uid", got, ev.GetPod(), ev.GetType(), ev.GetMessage(), w0)
			}
		default:
			t.Fatalf("nothing sent, want %q", w0)
		}
	}
	select {
	case ev := <-w.ch:
		t.Errorf("also sent %v", ev)
	default:
	}
}
