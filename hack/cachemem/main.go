// Command cachemem measures what the controller's caches cost in a cluster
// full of objects that are none of its business: it starts a local control
// plane, creates -configmaps unrelated ConfigMaps and -secrets unrelated
// Secrets (1 KiB of data each), and then runs the controller twice, each
// time in a fresh process, reporting its heap and RSS once its caches hold
// what a run reading one ConfigMap and one Secret of its own namespace
// makes them hold:
//
//	old  the cache settings before issue 8: a manager client reading every
//	     kind through the manager's cache (Client.Cache.Unstructured), so
//	     the journal read, the read op and the Secret read each start a
//	     cluster-wide informer (typed ConfigMaps, unstructured ConfigMaps,
//	     unstructured Secrets)
//	new  controller.NewManager and controller.Setup as the binary builds
//	     them: journal ConfigMaps by label, ops reads through pkg/opcache
//	     (one informer for ConfigMaps of the run's namespace), Secrets
//	     read directly
//
// Both processes build the whole controller with controller.Setup
// (in-process evaluation, so no worker processes) and run it for -settle.
// Run it with
//
//	go run ./hack/cachemem
//
// Creating 11,000 objects takes a minute or so on a small machine; it is not
// part of make test.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/stepflow-dev/stepflow/api"
	"github.com/stepflow-dev/stepflow/internal/testenv"
	"github.com/stepflow-dev/stepflow/pkg/controller"
	"github.com/stepflow-dev/stepflow/pkg/journal/kubestore"
)

const (
	noiseNamespace = "noise"
	runNamespace   = "tenant"
)

type options struct {
	configMaps, secrets int
	settle              time.Duration
	// child mode
	mode, kubeconfig string
}

// usage is what a child reports.
type usage struct {
	Mode      string `json:"mode"`
	HeapInuse uint64 `json:"heapInuse"`
	RSS       uint64 `json:"rss"`
}

func main() {
	var o options
	flag.IntVar(&o.configMaps, "configmaps", 10000, "unrelated ConfigMaps to create")
	flag.IntVar(&o.secrets, "secrets", 1000, "unrelated Secrets to create")
	flag.DurationVar(&o.settle, "settle", 5*time.Second, "how long each controller runs before it is measured")
	flag.StringVar(&o.mode, "child", "", "run as the measured controller: old or new (internal)")
	flag.StringVar(&o.kubeconfig, "child-kubeconfig", "", "the child's cluster (internal)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	var err error
	if o.mode != "" {
		err = child(ctx, o)
	} else {
		err = parent(ctx, o)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "cachemem:", err)
		os.Exit(1)
	}
}

func parent(ctx context.Context, o options) error {
	scheme, err := api.NewScheme()
	if err != nil {
		return err
	}
	env, stopEnv := testenv.StartMain(testenv.WithScheme(scheme), testenv.WithCRDs())
	defer stopEnv()
	cfg := rest.CopyConfig(env.Config)
	cfg.QPS, cfg.Burst = -1, 0
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return err
	}
	start := time.Now()
	if err := populate(ctx, c, o); err != nil {
		return err
	}
	fmt.Printf("created %d ConfigMaps and %d Secrets in namespace %s in %s\n",
		o.configMaps, o.secrets, noiseNamespace, time.Since(start).Round(time.Second))

	dir, err := os.MkdirTemp("", "cachemem")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := writeKubeconfig(env.Config, kubeconfig); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	var got []usage
	for _, mode := range []string{"old", "new"} {
		cmd := exec.CommandContext(ctx, self, "-child", mode, "-child-kubeconfig", kubeconfig, "-settle", o.settle.String())
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("the %s controller: %w\n%s", mode, err, out.String())
		}
		var u usage
		if err := json.Unmarshal(bytes.TrimSpace(out.Bytes()), &u); err != nil {
			return fmt.Errorf("the %s controller's report %q: %w", mode, out.String(), err)
		}
		got = append(got, u)
	}
	fmt.Printf("\ncontroller with %d unrelated ConfigMaps and %d unrelated Secrets in the cluster\n", o.configMaps, o.secrets)
	fmt.Printf("%-5s %12s %12s\n", "cache", "heap in use", "RSS")
	for _, u := range got {
		fmt.Printf("%-5s %9.1f MiB %9.1f MiB\n", u.Mode, mib(u.HeapInuse), mib(u.RSS))
	}
	return nil
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

// populate creates the unrelated objects, and the ConfigMap and Secret the
// run's namespace holds for it.
func populate(ctx context.Context, c client.Client, o options) error {
	for _, ns := range []string{noiseNamespace, runNamespace} {
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			return err
		}
	}
	data := strings.Repeat("x", 1024)
	objs := make(chan client.Object)
	var failed atomic.Value
	var wg sync.WaitGroup
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for obj := range objs {
				if err := c.Create(ctx, obj); err != nil {
					failed.Store(err)
				}
			}
		}()
	}
	for i := 0; i < o.configMaps; i++ {
		objs <- &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: noiseNamespace, Name: "cm-" + strconv.Itoa(i)},
			Data: map[string]string{"data": data}}
	}
	for i := 0; i < o.secrets; i++ {
		objs <- &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: noiseNamespace, Name: "secret-" + strconv.Itoa(i)},
			Data: map[string][]byte{"data": []byte(data)}}
	}
	objs <- &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: runNamespace, Name: "settings"}, Data: map[string]string{"a": "b"}}
	objs <- &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: runNamespace, Name: kubestore.ContextConfigMapName("run"),
		Labels: map[string]string{kubestore.RunLabel: "run"}}}
	objs <- &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: runNamespace, Name: "creds"}, Data: map[string][]byte{"k": []byte("v")}}
	close(objs)
	wg.Wait()
	if err, ok := failed.Load().(error); ok {
		return err
	}
	return nil
}

func writeKubeconfig(cfg *rest.Config, path string) error {
	kc := clientcmdapi.NewConfig()
	kc.Clusters["env"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData, Token: cfg.BearerToken}
	kc.Contexts["env"] = &clientcmdapi.Context{Cluster: "env", AuthInfo: "admin"}
	kc.CurrentContext = "env"
	return clientcmd.WriteToFile(*kc, path)
}

// child runs the controller with the mode's cache settings, makes its
// caches hold what one run's reads make them hold, and prints its usage.
func child(ctx context.Context, o options) error {
	cfg, err := clientcmd.BuildConfigFromFlags("", o.kubeconfig)
	if err != nil {
		return err
	}
	cfg.QPS, cfg.Burst = 50, 100
	mo := ctrl.Options{Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0"}
	var mgr ctrl.Manager
	switch o.mode {
	case "old":
		if mo.Scheme, err = api.NewScheme(); err != nil {
			return err
		}
		mo.Client.Cache = &client.CacheOptions{Unstructured: true}
		mgr, err = ctrl.NewManager(cfg, mo)
	case "new":
		mgr, err = controller.NewManager(cfg, mo)
	default:
		return fmt.Errorf("mode %q: want old or new", o.mode)
	}
	if err != nil {
		return err
	}
	c, err := controller.Setup(mgr, controller.Options{Metrics: prometheus.NewRegistry()})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	if !mgr.GetCache().WaitForCacheSync(ctx) {
		return fmt.Errorf("the manager's cache never synced")
	}

	// A run's reads: its journal (typed, through the manager's client), a
	// read op of a ConfigMap and a Secret read (unstructured, through what
	// the ops read: before issue 8 the manager's client too).
	ops := client.Reader(mgr.GetClient())
	if o.mode == "new" {
		ops = c.OpsReader
	}
	var journal corev1.ConfigMap
	if err := mgr.GetClient().Get(ctx, client.ObjectKey{Namespace: runNamespace, Name: kubestore.ContextConfigMapName("run")}, &journal); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	for _, kind := range []struct{ kind, name string }{{"ConfigMap", "settings"}, {"Secret", "creds"}} {
		u := &unstructured.Unstructured{}
		u.SetAPIVersion("v1")
		u.SetKind(kind.kind)
		if err := ops.Get(ctx, client.ObjectKey{Namespace: runNamespace, Name: kind.name}, u); err != nil {
			return fmt.Errorf("%s: %w", kind.kind, err)
		}
	}
	select {
	case <-time.After(o.settle):
	case err := <-done:
		return fmt.Errorf("the manager stopped: %w", err)
	}
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	rss, err := rssOf()
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(usage{Mode: o.mode, HeapInuse: ms.HeapInuse, RSS: rss})
}

// rssOf returns this process's resident set size.
func rssOf() (uint64, error) {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("/proc/self/status: no VmRSS")
}
