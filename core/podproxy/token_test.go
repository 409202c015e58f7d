package podproxy

import (
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"
)

// A pod's service-account volume is handed over as a Secret of its files,
// the token requested for the pod, marked with the volume it stands for.
func TestServiceAccountVolumeIsHandedOverAsASecret(t *testing.T) {
	ca := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: rootCAConfigMap}, Data: map[string]string{"ca.crt": "HUB-CA"}}
	pod := testPod("with-token")
	pod.Spec.Volumes = []corev1.Volume{{Name: "kube-api-access-abcde", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
		{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token"}},
		{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: rootCAConfigMap}, Items: []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}}}},
		{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{Path: "namespace", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}}}},
	}}}}}
	h := newHarness(t, ca, pod)
	h.client.PrependReactor("create", "serviceaccounts", func(a k8stesting.Action) (bool, runtime.Object, error) {
		req := a.(k8stesting.CreateAction).GetObject().(*authenticationv1.TokenRequest).DeepCopy()
		if req.Spec.BoundObjectRef == nil || req.Spec.BoundObjectRef.UID != pod.UID {
			t.Errorf("token request not bound to the pod: %+v", req.Spec.BoundObjectRef)
		}
		req.Status = authenticationv1.TokenRequestStatus{Token: "hub-token", ExpirationTimestamp: metav1.NewTime(time.Now().Add(time.Hour))}
		return true, req, nil
	})
	h.start()
	h.waitForPhase("with-token", corev1.PodRunning)

	req, _ := h.backend.Request(testNode, string(pod.UID))
	var found bool
	for _, raw := range req.Secrets {
		var s corev1.Secret
		if err := s.Unmarshal(raw); err != nil {
			t.Fatal(err)
		}
		if s.Annotations[AnnotationProjectedVolume] != "kube-api-access-abcde" {
			continue
		}
		found = true
		if string(s.Data["token"]) != "hub-token" || string(s.Data["ca.crt"]) != "HUB-CA" || string(s.Data["namespace"]) != "default" {
			t.Errorf("token Secret %s holds %v", s.Name, s.Data)
		}
	}
	if !found {
		t.Errorf("no Secret of the service-account volume among %d handed over", len(req.Secrets))
	}
}
