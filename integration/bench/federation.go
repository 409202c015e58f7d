package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/fedlet/fedlet/core/members"
	"github.com/fedlet/fedlet/integration/cluster"
)

// federationAim is how far above the floor the p50 of bound on the hub →
// Running seen on the hub may be.
const federationAim = 150 * time.Millisecond

// runFederation measures pods going from the hub to a member cluster
// against the same pods created in the member directly, n of each, one at
// a time, in one run.
func runFederation(n int) error {
	opts, cleanup, err := clusterOptions()
	if err != nil {
		return err
	}
	defer cleanup()
	opts.Members = 1
	ctx := context.Background()
	fmt.Println("starting a hub and one member cluster…")
	hub, err := cluster.Start(ctx, opts)
	if err != nil {
		return fmt.Errorf("start clusters: %w", err)
	}
	defer func() {
		stopCtx, cancel := context.WithTimeout(ctx, 3*time.Minute)
		defer cancel()
		_ = hub.Stop(stopCtx)
	}()
	member := hub.Members()[0]
	f := &federationBench{n: n, hub: hub, member: member}
	if f.hubClient, err = unlimitedClient(hub); err != nil {
		return err
	}
	if f.memberClient, err = unlimitedClient(member); err != nil {
		return err
	}
	if err := f.warmUp(ctx); err != nil {
		return err
	}
	floor, err := f.floor(ctx)
	if err != nil {
		return fmt.Errorf("floor: %w", err)
	}
	inMember, onHub, err := f.federated(ctx)
	if err != nil {
		return fmt.Errorf("federated pods: %w", err)
	}
	f.report(floor, inMember, onHub)
	return nil
}

func unlimitedClient(c *cluster.Cluster) (kubernetes.Interface, error) {
	rest := c.RESTConfig()
	rest.QPS, rest.Burst = 1000, 2000
	return kubernetes.NewForConfig(rest)
}

type federationBench struct {
	n                       int
	hub, member             *cluster.Cluster
	hubClient, memberClient kubernetes.Interface
}

// memberPod is the pod of both measurements: what the kubernetes plugin
// creates in the member for a hub pod (unbound: the member schedules it).
func (f *federationBench) memberPod(name string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"bench": "true"}},
		Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: ptr.To[int64](0),
			Containers: []corev1.Container{{
				Name: "main", Image: f.hub.Image(), ImagePullPolicy: corev1.PullIfNotPresent,
				Command: []string{"sleep", "3600"},
			}},
		},
	}
}

// hubPod is the same pod on the hub, bound to the member's virtual node at
// creation, so that the hub's scheduler is not measured.
func (f *federationBench) hubPod(name string) *corev1.Pod {
	p := f.memberPod(name)
	p.Spec.NodeName = f.member.Name()
	p.Spec.Tolerations = []corev1.Toleration{{Key: members.TaintKey, Operator: corev1.TolerationOpEqual, Value: members.TaintValue, Effect: corev1.TaintEffectNoSchedule}}
	return p
}

// warmUp runs one federated pod, so that the image is in the member and
// every cache and connection is warm.
func (f *federationBench) warmUp(ctx context.Context) error {
	for _, c := range []kubernetes.Interface{f.hubClient, f.memberClient} {
		err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
			_, err := c.CoreV1().ServiceAccounts(namespace).Get(ctx, "default", metav1.GetOptions{})
			return err == nil, nil
		})
		if err != nil {
			return fmt.Errorf("no default service account: %w", err)
		}
	}
	inMember, onHub, err := f.one(ctx, "fed-warm-up")
	if err != nil {
		return fmt.Errorf("warm-up pod: %w", err)
	}
	fmt.Printf("warm-up pod Running in the member after %s, on the hub after %s (image pulled)\n", inMember.Round(time.Millisecond), onHub.Round(time.Millisecond))
	return f.deleteAll(ctx)
}

// floor creates the pods in the member directly: create → Running seen by
// a watch of the member.
func (f *federationBench) floor(ctx context.Context) ([]time.Duration, error) {
	pods := f.memberClient.CoreV1().Pods(namespace)
	var out []time.Duration
	for i := range f.n {
		name := fmt.Sprintf("floor-%03d", i)
		w, err := watchPods(ctx, f.memberClient, namespace, metav1.ListOptions{FieldSelector: "metadata.name=" + name})
		if err != nil {
			return nil, err
		}
		start := time.Now()
		if _, err := pods.Create(ctx, f.memberPod(name), metav1.CreateOptions{}); err != nil {
			w.Stop()
			return nil, err
		}
		at, err := runningAt(ctx, w)
		w.Stop()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		out = append(out, at.Sub(start))
	}
	return out, f.deleteAll(ctx)
}

// federated creates the pods on the hub, bound to the virtual node: bound
// → Running in the member (a watch of the member) and → Running on the
// hub (a watch of the hub).
func (f *federationBench) federated(ctx context.Context) (inMember, onHub []time.Duration, err error) {
	for i := range f.n {
		m, h, err := f.one(ctx, fmt.Sprintf("fed-%03d", i))
		if err != nil {
			return nil, nil, err
		}
		inMember, onHub = append(inMember, m), append(onHub, h)
	}
	return inMember, onHub, f.deleteAll(ctx)
}

// one creates one pod on the hub and times its Running in both clusters.
func (f *federationBench) one(ctx context.Context, name string) (inMember, onHub time.Duration, err error) {
	byName := metav1.ListOptions{FieldSelector: "metadata.name=" + name}
	mw, err := watchPods(ctx, f.memberClient, namespace, byName)
	if err != nil {
		return 0, 0, err
	}
	defer mw.Stop()
	hw, err := watchPods(ctx, f.hubClient, namespace, byName)
	if err != nil {
		return 0, 0, err
	}
	defer hw.Stop()
	start := time.Now()
	if _, err := f.hubClient.CoreV1().Pods(namespace).Create(ctx, f.hubPod(name), metav1.CreateOptions{}); err != nil {
		return 0, 0, err
	}
	var memberAt, hubAt time.Time
	var memberErr, hubErr error
	var wg sync.WaitGroup
	wg.Go(func() { memberAt, memberErr = runningAt(ctx, mw) })
	wg.Go(func() { hubAt, hubErr = runningAt(ctx, hw) })
	wg.Wait()
	if memberErr != nil || hubErr != nil {
		return 0, 0, fmt.Errorf("%s: in the member: %v; on the hub: %v", name, memberErr, hubErr)
	}
	return memberAt.Sub(start), hubAt.Sub(start), nil
}

// runningAt waits for the watched pod to be Running and says when.
func runningAt(ctx context.Context, w watch.Interface) (time.Time, error) {
	timeout := time.After(2 * time.Minute)
	for {
		select {
		case <-timeout:
			return time.Time{}, fmt.Errorf("not Running within 2m")
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case ev, ok := <-w.ResultChan():
			if !ok {
				return time.Time{}, fmt.Errorf("watch closed")
			}
			if p, isPod := ev.Object.(*corev1.Pod); isPod && p.Status.Phase == corev1.PodRunning {
				return time.Now(), nil
			}
		}
	}
}

// deleteAll deletes the bench pods of both clusters and waits until they
// are gone.
func (f *federationBench) deleteAll(ctx context.Context) error {
	for _, c := range []kubernetes.Interface{f.hubClient, f.memberClient} {
		pods := c.CoreV1().Pods(namespace)
		if err := pods.DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: "bench=true"}); err != nil {
			return fmt.Errorf("delete pods: %w", err)
		}
	}
	for _, c := range []kubernetes.Interface{f.hubClient, f.memberClient} {
		err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
			list, err := c.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: "bench=true"})
			return err == nil && len(list.Items) == 0, nil
		})
		if err != nil {
			return fmt.Errorf("pods not gone: %w", err)
		}
	}
	return nil
}

func (f *federationBench) report(floor, inMember, onHub []time.Duration) {
	fp50, fp99 := percentile(floor, 50), percentile(floor, 99)
	mp50, mp99 := percentile(inMember, 50), percentile(inMember, 99)
	hp50, hp99 := percentile(onHub, 50), percentile(onHub, 99)
	fmt.Printf("\nfederated pod start-up, %d pods one at a time, image present in the member\n", f.n)
	fmt.Printf("%-52s %10s %10s\n", "", "p50", "p99")
	fmt.Printf("%-52s %10s %10s\n", "floor: created in the member → Running (member)", ms(fp50), ms(fp99))
	fmt.Printf("%-52s %10s %10s\n", "fedlet: bound on the hub → Running in the member", ms(mp50), ms(mp99))
	fmt.Printf("%-52s %10s %10s\n", "fedlet: bound on the hub → Running on the hub", ms(hp50), ms(hp99))
	verdict := "met"
	if hp50-fp50 > federationAim {
		verdict = "missed"
	}
	fmt.Printf("hub → Running on the hub minus the floor: p50 %+.1f ms, p99 %+.1f ms (ratio p50 %.2f); aim p50 within %s: %s\n",
		msf(hp50-fp50), msf(hp99-fp99), float64(hp50)/float64(fp50), federationAim, verdict)
	fmt.Printf("of which the way back (Running in the member → seen on the hub): p50 %.1f ms\n", msf(hp50-mp50))
}

func msf(d time.Duration) float64 {
	return float64(d.Microseconds()) / 1000
}
