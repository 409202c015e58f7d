package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/fedlet/fedlet/integration/cluster"
)

const namespace = "default"

type bench struct {
	cluster *cluster.Cluster
	// client is not rate-limited on the client side, so that it measures the agent.
	client kubernetes.Interface
	n      int
	binDir string
}

// pod is a busybox pod bound to the fedlet node at creation: the latency
// measured is the agent's, not the scheduler's.
func (b *bench) pod(name string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"bench": "true"}},
		Spec: corev1.PodSpec{
			NodeName:                      b.cluster.NodeName(),
			TerminationGracePeriodSeconds: ptr.To[int64](0),
			Containers: []corev1.Container{{
				Name: "main", Image: b.cluster.Image(), ImagePullPolicy: corev1.PullIfNotPresent,
				Command: []string{"sleep", "3600"},
			}},
		},
	}
}

// warmUp runs one pod so the image is pulled and every cache is warm.
func (b *bench) warmUp(ctx context.Context) error {
	// Pods are refused until the controller-manager has made the namespace's service account.
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := b.client.CoreV1().ServiceAccounts(namespace).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	})
	if err != nil {
		return fmt.Errorf("no default service account: %w", err)
	}
	lat, err := b.startPods(ctx, []string{"warm-up"}, 1)
	if err != nil {
		return fmt.Errorf("warm-up pod: %w", err)
	}
	fmt.Printf("warm-up pod Running after %s (image pulled)\n", lat[0].Round(time.Millisecond))
	return b.deletePods(ctx)
}

func (b *bench) podsOneAtATime(ctx context.Context) ([]time.Duration, error) {
	var out []time.Duration
	for i := range b.n {
		lat, err := b.startPods(ctx, []string{fmt.Sprintf("serial-%03d", i)}, 1)
		if err != nil {
			return nil, err
		}
		out = append(out, lat...)
	}
	return out, b.deletePods(ctx)
}

func (b *bench) podsAtOnce(ctx context.Context) ([]time.Duration, error) {
	lat, err := b.startPods(ctx, podNames("burst", b.n), 16)
	if err != nil {
		return nil, err
	}
	return lat, b.deletePods(ctx)
}

// memory is the agent's and the plugin's resident memory, idle and with pods running.
type memory struct {
	pods                                             int
	agentBefore, agentWith, pluginBefore, pluginWith int64
	// heapBefore and heapWith are the agent's live heap just after a
	// garbage collection: what it keeps, without the collector's slack.
	heapBefore, heapWith int64
}

// memoryAt reads the memory of the agent and its plugin, idle and then with
// that many pods running.
func (b *bench) memoryAt(ctx context.Context, pods int) (memory, error) {
	mem := memory{pods: pods}
	var err error
	if mem.agentBefore, mem.pluginBefore, err = rss(b.cluster); err != nil {
		return mem, err
	}
	if mem.heapBefore, err = b.liveHeap(ctx); err != nil {
		return mem, err
	}
	// Host-network pods: the node's /24 pod CIDR holds 253 pod addresses,
	// and what the agent keeps per pod hardly depends on its network.
	if _, err := b.startPods(ctx, podNames(fmt.Sprintf("mem%d", pods), pods), 16, hostNetwork); err != nil {
		return mem, err
	}
	time.Sleep(5 * time.Second) // let the agent settle before reading its memory
	if mem.agentWith, mem.pluginWith, err = rss(b.cluster); err != nil {
		return mem, err
	}
	if mem.heapWith, err = b.liveHeap(ctx); err != nil {
		return mem, err
	}
	return mem, b.deletePods(ctx)
}

// liveHeap is the agent's heap in use after a garbage collection, read
// from the Go profile the node API serves (heap?gc=1&debug=1 ends with the
// runtime's MemStats).
func (b *bench) liveHeap(ctx context.Context) (int64, error) {
	raw, err := b.client.CoreV1().RESTClient().Get().AbsPath("/api/v1/nodes", b.cluster.NodeName(), "proxy/debug/pprof/heap").
		Param("gc", "1").Param("debug", "1").DoRaw(ctx)
	if err != nil {
		return 0, fmt.Errorf("read the agent's heap profile: %w", err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, "# HeapAlloc = "); ok {
			return strconv.ParseInt(strings.TrimSpace(rest), 10, 64)
		}
	}
	return 0, fmt.Errorf("the agent's heap profile has no HeapAlloc")
}

func podNames(prefix string, n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("%s-%03d", prefix, i)
	}
	return names
}

// startPods creates the pods with that many creates in flight and returns,
// for each, the time from its create call to a watch seeing it Running.
func (b *bench) startPods(ctx context.Context, names []string, inFlight int, opts ...func(*corev1.Pod)) ([]time.Duration, error) {
	pods := b.client.CoreV1().Pods(namespace)
	w, err := watchPods(ctx, b.client, namespace, metav1.ListOptions{LabelSelector: "bench=true"})
	if err != nil {
		return nil, err
	}
	defer w.Stop()

	var mu sync.Mutex
	created := map[string]time.Time{}
	wanted := map[string]bool{}
	for _, name := range names {
		wanted[name] = true
	}
	sem := make(chan struct{}, inFlight)
	var wg sync.WaitGroup
	errs := make(chan error, len(names))
	for _, name := range names {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			start := time.Now()
			pod := b.pod(name)
			for _, o := range opts {
				o(pod)
			}
			if _, err := pods.Create(ctx, pod, metav1.CreateOptions{}); err != nil {
				errs <- fmt.Errorf("create %s: %w", name, err)
				return
			}
			mu.Lock()
			created[name] = start
			mu.Unlock()
		})
	}

	running := map[string]time.Time{}
	// Hundreds of pods take a while on two cores: a second each, at least
	// five minutes.
	wait := max(5*time.Minute, time.Duration(len(names))*time.Second)
	timeout := time.After(wait)
	for len(running) < len(names) {
		select {
		case err := <-errs:
			return nil, err
		case <-timeout:
			return nil, fmt.Errorf("%d of %d pods Running after %s", len(running), len(names), wait)
		case ev, ok := <-w.ResultChan():
			if !ok {
				return nil, fmt.Errorf("watch closed")
			}
			p, isPod := ev.Object.(*corev1.Pod)
			if isPod && wanted[p.Name] && ev.Type != watch.Deleted && p.Status.Phase == corev1.PodRunning {
				if _, seen := running[p.Name]; !seen {
					running[p.Name] = time.Now()
				}
			}
		}
	}
	wg.Wait()
	out := make([]time.Duration, 0, len(running))
	for name, at := range running {
		out = append(out, at.Sub(created[name]))
	}
	return out, nil
}

// deletePods deletes every bench pod and waits until they are gone.
func (b *bench) deletePods(ctx context.Context) error {
	pods := b.client.CoreV1().Pods(namespace)
	err := pods.DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: "bench=true"})
	if err != nil {
		return fmt.Errorf("delete pods: %w", err)
	}
	return wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		list, err := pods.List(ctx, metav1.ListOptions{LabelSelector: "bench=true"})
		return err == nil && len(list.Items) == 0, nil
	})
}

func hostNetwork(p *corev1.Pod) { p.Spec.HostNetwork = true }
