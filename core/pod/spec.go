package pod

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// unsupported names the features of the pod this agent cannot honour yet,
// so the pod waits with that reason instead of running without them.
func unsupported(pod *corev1.Pod) string {
	var missing []string
	if len(pod.Spec.InitContainers) > 0 {
		missing = append(missing, "init containers")
	}
	for _, v := range pod.Spec.Volumes {
		if !isServiceAccountVolume(v) {
			missing = append(missing, fmt.Sprintf("volume %q", v.Name))
		}
	}
	for _, ctr := range pod.Spec.Containers {
		if len(ctr.EnvFrom) > 0 {
			missing = append(missing, fmt.Sprintf("envFrom in container %q", ctr.Name))
		}
		for _, e := range ctr.Env {
			if e.ValueFrom != nil {
				missing = append(missing, fmt.Sprintf("env %s from a reference in container %q", e.Name, ctr.Name))
			}
		}
		for _, p := range ctr.Ports {
			if p.HostPort != 0 && !pod.Spec.HostNetwork {
				missing = append(missing, fmt.Sprintf("hostPort %d in container %q", p.HostPort, ctr.Name))
			}
		}
	}
	if len(missing) == 0 {
		return ""
	}
	return "not supported by this node yet: " + strings.Join(missing, ", ")
}

// isServiceAccountVolume recognises the projected token volume the API
// server adds to every pod. It is not mounted yet: such pods run without
// API credentials rather than not at all.
func isServiceAccountVolume(v corev1.Volume) bool {
	return v.Projected != nil && strings.HasPrefix(v.Name, "kube-api-access-")
}

// containerSpec translates a container of the pod into the runtime protocol,
// expanding $(VAR) references in command and args as the kubelet does.
func containerSpec(pod *corev1.Pod, ctr *corev1.Container) (*runtimev1.ContainerSpec, error) {
	env := make([]*runtimev1.KeyValue, 0, len(ctr.Env))
	values := map[string]string{}
	for _, e := range ctr.Env {
		v := expand(e.Value, values)
		values[e.Name] = v
		env = append(env, &runtimev1.KeyValue{Key: e.Name, Value: v})
	}
	spec := &runtimev1.ContainerSpec{
		Name:       ctr.Name,
		Image:      ctr.Image,
		WorkingDir: ctr.WorkingDir,
		Env:        env,
		Tty:        ctr.TTY,
		Stdin:      ctr.Stdin,
	}
	for _, a := range ctr.Command {
		spec.Command = append(spec.Command, expand(a, values))
	}
	for _, a := range ctr.Args {
		spec.Args = append(spec.Args, expand(a, values))
	}
	return spec, nil
}

// expand replaces $(NAME) by the variable's value when it is defined, leaves
// unknown references as they are, and turns $$ into $.
func expand(s string, values map[string]string) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			name := s[i+2 : i+2+end]
			if v, ok := values[name]; ok {
				b.WriteString(v)
			} else {
				b.WriteString(s[i : i+3+end])
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}
