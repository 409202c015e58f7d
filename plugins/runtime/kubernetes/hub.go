package kubernetes

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
)

// hubView is what the plugin reads of the hub: its Services and their
// EndpointSlices, kept by informers. changed is called on every change.
type hubView struct {
	cfg      HubConfig
	services cache.SharedIndexInformer
	slices   cache.SharedIndexInformer
	cancel   context.CancelFunc
	wg       sync.WaitGroup
}

// byService indexes EndpointSlices by namespace/service name.
const byService = "service"

func newHubView(cfg HubConfig, changed func(), logger *slog.Logger) (*hubView, error) {
	rc, err := clientcmd.BuildConfigFromFlags("", cfg.Kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("config field hub.kubeconfig: load %s: %w", cfg.Kubeconfig, err)
	}
	rc.UserAgent = "fedlet-runtime-kubernetes/" + Version + " (hub)"
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("config field hub.kubeconfig: client for %s: %w", cfg.Kubeconfig, err)
	}
	factory := informers.NewSharedInformerFactory(client, 0)
	h := &hubView{
		cfg:      cfg,
		services: factory.Core().V1().Services().Informer(),
		slices:   factory.Discovery().V1().EndpointSlices().Informer(),
	}
	if err := h.slices.AddIndexers(cache.Indexers{byService: sliceService}); err != nil {
		return nil, fmt.Errorf("set up hub informers: %w", err)
	}
	handler := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { changed() },
		UpdateFunc: func(any, any) { changed() },
		DeleteFunc: func(any) { changed() },
	}
	for _, inf := range []cache.SharedIndexInformer{h.services, h.slices} {
		if _, err := inf.AddEventHandler(handler); err != nil {
			return nil, fmt.Errorf("set up hub informers: %w", err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	for _, inf := range []cache.SharedIndexInformer{h.services, h.slices} {
		h.wg.Go(func() { inf.RunWithContext(ctx) })
	}
	logger.Info("reading the hub's Services", "kubeconfig", cfg.Kubeconfig, "host", rc.Host)
	return h, nil
}

func (h *hubView) stop() {
	if h == nil {
		return
	}
	h.cancel()
	h.wg.Wait()
}

func (h *hubView) synced() bool {
	return h.services.HasSynced() && h.slices.HasSynced()
}

// allServices lists the hub's Services.
func (h *hubView) allServices() []*corev1.Service {
	items := h.services.GetStore().List()
	out := make([]*corev1.Service, 0, len(items))
	for _, obj := range items {
		out = append(out, obj.(*corev1.Service))
	}
	return out
}

// slicesOf lists the EndpointSlices of the Service namespace/name.
func (h *hubView) slicesOf(namespace, name string) []*discoveryv1.EndpointSlice {
	items, _ := h.slices.GetIndexer().ByIndex(byService, namespace+"/"+name)
	out := make([]*discoveryv1.EndpointSlice, 0, len(items))
	for _, obj := range items {
		out = append(out, obj.(*discoveryv1.EndpointSlice))
	}
	return out
}

func sliceService(obj any) ([]string, error) {
	s := obj.(*discoveryv1.EndpointSlice)
	name := s.Labels[discoveryv1.LabelServiceName]
	if name == "" {
		return nil, nil
	}
	return []string{s.Namespace + "/" + name}, nil
}
