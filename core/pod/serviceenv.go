package pod

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// serviceEnv is the environment the kubelet gives every container about
// Services (Docker links style): for the cluster's "kubernetes" Service
// always, so that in-cluster clients find the API server, and for each
// Service of the pod's namespace unless enableServiceLinks is false:
// NAME_SERVICE_HOST, NAME_SERVICE_PORT, NAME_PORT and the rest. services
// lists a namespace's Services.
func serviceEnv(pod *corev1.Pod, services func(namespace string) []*corev1.Service) []*runtimev1.KeyValue {
	var chosen []*corev1.Service
	if pod.Spec.EnableServiceLinks == nil || *pod.Spec.EnableServiceLinks {
		chosen = append(chosen, services(pod.Namespace)...)
	}
	if pod.Namespace != metav1.NamespaceDefault {
		for _, s := range services(metav1.NamespaceDefault) {
			if s.Name == "kubernetes" {
				chosen = append(chosen, s)
			}
		}
	}
	slices.SortFunc(chosen, func(a, b *corev1.Service) int { return strings.Compare(a.Name, b.Name) })
	var env []*runtimev1.KeyValue
	for _, s := range chosen {
		ip := s.Spec.ClusterIP
		if ip == "" || ip == corev1.ClusterIPNone || len(s.Spec.Ports) == 0 {
			continue
		}
		env = append(env, linkEnv(s, ip)...)
	}
	return env
}

func linkEnv(s *corev1.Service, ip string) []*runtimev1.KeyValue {
	prefix := strings.ToUpper(strings.ReplaceAll(s.Name, "-", "_"))
	kv := func(k, v string) *runtimev1.KeyValue { return &runtimev1.KeyValue{Key: prefix + k, Value: v} }
	first := s.Spec.Ports[0]
	env := []*runtimev1.KeyValue{
		kv("_SERVICE_HOST", ip),
		kv("_SERVICE_PORT", strconv.Itoa(int(first.Port))),
	}
	for _, p := range s.Spec.Ports {
		if p.Name != "" {
			env = append(env, kv("_SERVICE_PORT_"+strings.ToUpper(strings.ReplaceAll(p.Name, "-", "_")), strconv.Itoa(int(p.Port))))
		}
	}
	env = append(env, kv("_PORT", fmt.Sprintf("%s://%s", strings.ToLower(string(protocolOf(first))), hostPort(ip, first.Port))))
	for _, p := range s.Spec.Ports {
		proto := protocolOf(p)
		key := fmt.Sprintf("_PORT_%d_%s", p.Port, strings.ToUpper(string(proto)))
		env = append(env,
			kv(key, fmt.Sprintf("%s://%s", strings.ToLower(string(proto)), hostPort(ip, p.Port))),
			kv(key+"_PROTO", strings.ToLower(string(proto))),
			kv(key+"_PORT", strconv.Itoa(int(p.Port))),
			kv(key+"_ADDR", ip),
		)
	}
	return env
}

func protocolOf(p corev1.ServicePort) corev1.Protocol {
	if p.Protocol == "" {
		return corev1.ProtocolTCP
	}
	return p.Protocol
}

func hostPort(ip string, port int32) string {
	if strings.Contains(ip, ":") {
		return fmt.Sprintf("[%s]:%d", ip, port)
	}
	return fmt.Sprintf("%s:%d", ip, port)
}
