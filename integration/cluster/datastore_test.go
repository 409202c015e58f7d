package cluster

import (
	"context"
	"fmt"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// TestDatastoreKeepsConcurrentWrites fires 300 creates at once through the
// API server and wants every acknowledged one stored: a SQLite DSN without
// kine's busy timeout and immediate transactions lost writes silently here.
func TestDatastoreKeepsConcurrentWrites(t *testing.T) {
	for _, ds := range []Datastore{DatastoreSQLite, DatastoreEtcd} {
		t.Run(string(ds), func(t *testing.T) {
			c := startCluster(t, Options{Datastore: ds, Until: PartAPIServer})
			cfg := c.RESTConfig()
			cfg.QPS, cfg.Burst = -1, 0 // no client-side throttling: all 300 in flight
			cs, err := kubernetes.NewForConfig(cfg)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			ns := createNamespace(ctx, t, cs, "writes")

			const n = 300
			var wg sync.WaitGroup
			errs := make([]error, n)
			start := make(chan struct{})
			for i := range n {
				wg.Go(func() {
					<-start
					cm := &corev1.ConfigMap{
						ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cm-%03d", i)},
						Data:       map[string]string{"i": fmt.Sprint(i)},
					}
					_, errs[i] = cs.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{})
				})
			}
			close(start)
			wg.Wait()
			acked := map[string]bool{}
			for i, err := range errs {
				if err != nil {
					t.Errorf("create cm-%03d: %v", i, err)
					continue
				}
				acked[fmt.Sprintf("cm-%03d", i)] = true
			}

			list, err := cs.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			stored := map[string]string{}
			for _, cm := range list.Items {
				stored[cm.Name] = cm.Data["i"]
			}
			for name := range acked {
				if _, ok := stored[name]; !ok {
					t.Errorf("%s was acknowledged but is not stored", name)
				}
			}
			for i := range n {
				name := fmt.Sprintf("cm-%03d", i)
				if v, ok := stored[name]; ok && v != fmt.Sprint(i) {
					t.Errorf("%s holds %q, want %d", name, v, i)
				}
			}
			t.Logf("%s: %d created, %d acknowledged, %d listed", ds, n, len(acked), len(stored))
			if len(acked) != n || len(stored) != n {
				t.Errorf("acknowledged %d and stored %d of %d", len(acked), len(stored), n)
			}
		})
	}
}

func createNamespace(ctx context.Context, t *testing.T, cs kubernetes.Interface, prefix string) string {
	t.Helper()
	ns, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	return ns.Name
}

// TestRestartKeepsObjectsAndLeavesNoProcess stops a cluster and starts it
// again on the same directory: the objects are still there, the
// certificates were not issued again, and no child outlived Stop.
func TestRestartKeepsObjectsAndLeavesNoProcess(t *testing.T) {
	dataDir := t.TempDir()
	opts := Options{DataDir: dataDir, BinDir: testBinDir(t), Until: PartAPIServer}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	first := startCluster(t, opts)
	if _, err := os.Stat(first.Paths().Ready); err != nil {
		t.Errorf("no ready file while up: %v", err)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "survivor"}, Data: map[string]string{"k": "v"}}
	if _, err := first.Client().CoreV1().ConfigMaps("default").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	caBefore, err := os.ReadFile(first.pki.caCert())
	if err != nil {
		t.Fatal(err)
	}
	pids := map[string]int{}
	for _, ch := range first.sup.started() {
		pids[ch.name] = ch.pid()
	}
	if err := first.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	for name, pid := range pids {
		// Reaped children are gone; signal 0 finds any process with that id.
		if err := syscall.Kill(pid, 0); err == nil {
			t.Errorf("%s (pid %d) still runs after Stop", name, pid)
		}
	}
	if _, err := os.Stat(first.Paths().Ready); !os.IsNotExist(err) {
		t.Errorf("ready file left after Stop: %v", err)
	}

	second := startCluster(t, opts)
	got, err := second.Client().CoreV1().ConfigMaps("default").Get(ctx, "survivor", metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		t.Fatal("the ConfigMap created before the restart is gone")
	}
	if err != nil {
		t.Fatal(err)
	}
	if got.Data["k"] != "v" {
		t.Errorf("ConfigMap data = %v", got.Data)
	}
	caAfter, err := os.ReadFile(second.pki.caCert())
	if err != nil {
		t.Fatal(err)
	}
	if string(caBefore) != string(caAfter) {
		t.Errorf("the CA was issued again on restart")
	}
}

// TestSecondStartOnTheSameDirectoryIsRefused: two clusters must never share
// a datastore or a containerd root.
func TestSecondStartOnTheSameDirectoryIsRefused(t *testing.T) {
	c := startCluster(t, Options{Until: PartDatastore})
	_, err := Start(context.Background(), Options{DataDir: c.Paths().DataDir, BinDir: testBinDir(t), Until: PartDatastore})
	if err == nil {
		t.Fatal("a second cluster started on the same data directory")
	}
	t.Logf("refused: %v", err)
}
