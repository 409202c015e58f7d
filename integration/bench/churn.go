package main

import (
	"context"
	"fmt"
	"sync"
	"syscall"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/oci"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"
)

// churnInFlight is how many create-run-delete cycles run at once.
const churnInFlight = 8

// stopsOnTerm is what churned containers run: it exits at once on SIGTERM,
// so both sides measure the same graceful stop.
var stopsOnTerm = []string{"sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"}

// churnGrace bounds both sides' stop: a SIGTERM that arrives before the
// shell has set its trap is ignored (it is PID 1), and SIGKILL follows.
const churnGrace = 2 * time.Second

// churnRate is what a churn run measured: cycles per second, and what
// each cycle cost in CPU time.
type churnRate struct {
	perSecond float64
	cpu       string
}

// churn runs n cycles, churnInFlight at a time.
func churn(ctx context.Context, n int, cycle func(ctx context.Context, i int) error) (churnRate, error) {
	cpuBefore, err := sampleCPU()
	if err != nil {
		return churnRate{}, err
	}
	start := time.Now()
	sem := make(chan struct{}, churnInFlight)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := cycle(ctx, i); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	close(errs)
	if err := <-errs; err != nil {
		return churnRate{}, err
	}
	cpuAfter, err := sampleCPU()
	if err != nil {
		return churnRate{}, err
	}
	return churnRate{perSecond: float64(n) / took.Seconds(), cpu: cpuPerCycle(cpuBefore, cpuAfter, n)}, nil
}

// floorChurn: create and start a container, then kill and remove it,
// straight through containerd.
func (b *bench) floorChurn(ctx context.Context) (churnRate, error) {
	client, err := containerd.New(b.cluster.Paths().ContainerdSocket)
	if err != nil {
		return churnRate{}, err
	}
	defer client.Close()
	ctx = namespaces.WithNamespace(ctx, "fedlet")
	image, err := client.GetImage(ctx, b.cluster.Image())
	if err != nil {
		return churnRate{}, err
	}
	return churn(ctx, b.n, func(ctx context.Context, i int) error {
		id := fmt.Sprintf("bench-churn-%03d", i)
		ctr, err := client.NewContainer(ctx, id, containerd.WithNewSnapshot(id, image),
			containerd.WithNewSpec(oci.WithImageConfig(image), oci.WithProcessArgs(stopsOnTerm...)))
		if err != nil {
			return fmt.Errorf("create %s: %w", id, err)
		}
		task, err := ctr.NewTask(ctx, cio.NullIO)
		if err != nil {
			return fmt.Errorf("task %s: %w", id, err)
		}
		exited, err := task.Wait(ctx)
		if err != nil {
			return fmt.Errorf("wait %s: %w", id, err)
		}
		if err := task.Start(ctx); err != nil {
			return fmt.Errorf("start %s: %w", id, err)
		}
		if err := task.Kill(ctx, syscall.SIGTERM); err != nil {
			return fmt.Errorf("stop %s: %w", id, err)
		}
		select {
		case <-exited:
		case <-time.After(churnGrace):
			_ = task.Kill(ctx, syscall.SIGKILL)
			<-exited
		}
		teardown(ctx, ctr, task)
		return nil
	})
}

// podChurn: create a pod bound to the node, wait until a watch sees it
// Running, delete it and wait until it is gone: the agent has stopped its
// container (SIGTERM), removed it and its sandbox, then the object.
func (b *bench) podChurn(ctx context.Context, prefix string, opts ...func(*corev1.Pod)) (churnRate, error) {
	pods := b.client.CoreV1().Pods(namespace)
	return churn(ctx, b.n, func(ctx context.Context, i int) error {
		name := fmt.Sprintf("%s-%03d", prefix, i)
		w, err := pods.Watch(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", name).String()})
		if err != nil {
			return err
		}
		defer w.Stop()
		pod := b.pod(name)
		pod.Spec.Containers[0].Command = stopsOnTerm
		pod.Spec.TerminationGracePeriodSeconds = ptr.To[int64](int64(churnGrace.Seconds()))
		for _, o := range opts {
			o(pod)
		}
		if _, err := pods.Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create %s: %w", name, err)
		}
		deleted := false
		timeout := time.After(2 * time.Minute)
		for {
			select {
			case <-timeout:
				return fmt.Errorf("pod %s: no full cycle within 2 minutes", name)
			case ev, ok := <-w.ResultChan():
				if !ok {
					return fmt.Errorf("watch of %s closed", name)
				}
				if ev.Type == watch.Deleted {
					return nil
				}
				p, isPod := ev.Object.(*corev1.Pod)
				if isPod && !deleted && p.Status.Phase == corev1.PodRunning {
					deleted = true
					if err := pods.Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
						return fmt.Errorf("delete %s: %w", name, err)
					}
				}
			}
		}
	})
}
