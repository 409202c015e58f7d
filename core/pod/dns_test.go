package pod

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

func TestPodDNSFollowsDNSPolicy(t *testing.T) {
	hostResolvConf = filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(hostResolvConf, []byte("# host\nnameserver 192.0.2.53\nsearch example.org\noptions edns0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := &specBuilder{clusterDNS: []string{"10.0.0.10"}, clusterDomain: "cluster.local"}
	cluster := &runtimev1.DNSConfig{
		Servers:  []string{"10.0.0.10"},
		Searches: []string{"ns.svc.cluster.local", "svc.cluster.local", "cluster.local", "example.org"},
		Options:  []string{"ndots:5"},
	}
	two := "2"
	cases := []struct {
		name        string
		policy      corev1.DNSPolicy
		hostNetwork bool
		config      *corev1.PodDNSConfig
		want        *runtimev1.DNSConfig
	}{
		{"default is ClusterFirst", "", false, nil, cluster},
		{"ClusterFirst", corev1.DNSClusterFirst, false, nil, cluster},
		{"host network with ClusterFirst gets the host's", corev1.DNSClusterFirst, true, nil, nil},
		{"ClusterFirstWithHostNet", corev1.DNSClusterFirstWithHostNet, true, nil, cluster},
		{"Default is the host's", corev1.DNSDefault, false, nil, nil},
		{"Default with dnsConfig adds to the host's", corev1.DNSDefault, false,
			&corev1.PodDNSConfig{Nameservers: []string{"192.0.2.1"}, Options: []corev1.PodDNSConfigOption{{Name: "edns0"}, {Name: "ndots", Value: &two}}},
			&runtimev1.DNSConfig{Servers: []string{"192.0.2.53", "192.0.2.1"}, Searches: []string{"example.org"}, Options: []string{"edns0", "ndots:2"}}},
		{"None takes dnsConfig alone", corev1.DNSNone, false,
			&corev1.PodDNSConfig{Nameservers: []string{"192.0.2.1"}, Searches: []string{"a.example"}},
			&runtimev1.DNSConfig{Servers: []string{"192.0.2.1"}, Searches: []string{"a.example"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns"}, Spec: corev1.PodSpec{DNSPolicy: tc.policy, HostNetwork: tc.hostNetwork, DNSConfig: tc.config}}
			got := c.podDNS(pod)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("podDNS = %v, want %v", got, tc.want)
			}
		})
	}

	// Without cluster DNS configured, ClusterFirst falls back to the host's.
	if got := (&specBuilder{clusterDomain: "cluster.local"}).podDNS(&corev1.Pod{}); got != nil {
		t.Errorf("podDNS without cluster DNS = %v, want the host's (nil)", got)
	}
}
