package main

import (
	"encoding/json"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/fedlet/fedlet/integration/cluster"
)

func TestMemberOverridesSendThePodToTheVirtualNode(t *testing.T) {
	var pod corev1.Pod
	if err := json.Unmarshal([]byte(memberOverrides("member-2")), &pod); err != nil {
		t.Fatalf("overrides are not a pod: %v", err)
	}
	if pod.Spec.NodeSelector[cluster.MemberLabel] != "member-2" || len(pod.Spec.NodeSelector) != 1 {
		t.Errorf("nodeSelector = %v", pod.Spec.NodeSelector)
	}
	want := corev1.Toleration{Key: cluster.VirtualNodeTaintKey, Operator: corev1.TolerationOpEqual, Value: cluster.VirtualNodeTaintValue, Effect: corev1.TaintEffectNoSchedule}
	if len(pod.Spec.Tolerations) != 1 || pod.Spec.Tolerations[0] != want {
		t.Errorf("tolerations = %+v, want %+v", pod.Spec.Tolerations, want)
	}
}
