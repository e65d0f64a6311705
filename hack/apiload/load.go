package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/stepflow-dev/stepflow/api"
	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/apiserver"
	"github.com/stepflow-dev/stepflow/pkg/app"
	"github.com/stepflow-dev/stepflow/pkg/definition"
)

// loadNamespace holds the stored and launched runs.
const loadNamespace = "load"

// The app ids: small matches 1% of the stored runs, half 50%, the rest
// are filler of about 1% each; launched is the app id of the launches.
const (
	appSmall    = "app-small"
	appHalf     = "app-half"
	appLaunched = "app-launch"
	creator     = "apiload"
)

// appOf is the app id of stored run i of n.
func appOf(i, n int) string {
	switch {
	case i < n/100:
		return appSmall
	case i < n/100+n/2:
		return appHalf
	default:
		return "app-" + strconv.Itoa(i%49)
	}
}

// withAppID is the configuration doc with its appId annotation set to id.
func withAppID(doc []byte, id string) ([]byte, error) {
	const line = "    appId: testapp\n"
	if bytes.Count(doc, []byte(line)) != 1 {
		return nil, fmt.Errorf("the configuration has no single %q line to give each run its app id", strings.TrimSpace(line))
	}
	return bytes.Replace(doc, []byte(line), []byte("    appId: "+id+"\n"), 1), nil
}

func run(ctx context.Context, o options) (*report, error) {
	rep := &report{options: o}
	doc, err := os.ReadFile(o.configuration)
	if err != nil {
		return nil, err
	}
	assets := o.assets
	if assets == "" {
		out, err := exec.Command("hack/control-plane.sh").Output()
		if err != nil {
			return nil, fmt.Errorf("hack/control-plane.sh: %w (or pass -assets)", err)
		}
		assets = strings.TrimSpace(string(out))
	}
	env := &envtest.Environment{BinaryAssetsDirectory: assets, CRDDirectoryPaths: []string{o.crds}, ErrorIfCRDPathMissing: true,
		ControlPlaneStartTimeout: 2 * time.Minute}
	cfg, err := env.Start()
	if err != nil {
		return nil, fmt.Errorf("starting kube-apiserver and etcd from %s: %w", assets, err)
	}
	defer func() {
		if err := env.Stop(); err != nil {
			logf("stopping the control plane: %v", err)
		}
	}()
	// The harness's own client: fast enough that the API server, not the
	// client's rate limiter, sets the pace of storing runs.
	cfg.QPS, cfg.Burst = 2000, 4000
	scheme, err := api.NewScheme()
	if err != nil {
		return nil, err
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, err
	}
	n, err := definition.InstallDir(ctx, c, o.definitions, definition.DefaultSystemNamespace)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, fmt.Errorf("no step definitions (*.cue) in %s: run from the repository root or pass -definitions", o.definitions)
	}
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: loadNamespace}}); err != nil {
		return nil, err
	}
	logf("control plane up, %d step definitions in %s", n, definition.DefaultSystemNamespace)

	if err := store(ctx, c, doc, o, rep); err != nil {
		return rep, err
	}

	// The server as the binary builds it from a kubeconfig (no QPS or
	// burst set: client-go's defaults), with --auth none; -server-qps
	// overrides.
	serverCfg := *cfg
	serverCfg.QPS, serverCfg.Burst = float32(o.serverQPS), o.serverBurst
	sent := &requestCounter{counts: map[string]int{}}
	serverCfg.Wrap(sent.wrap)
	conn, err := apiserver.NewCluster(&serverCfg)
	if err != nil {
		return rep, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { _ = conn.Start(ctx) }()
	// The cache starts an informer on first use: start the runs' one now,
	// so that its initial list is not in the first measured request.
	synced := time.Now()
	if _, err := conn.GetCache().GetInformer(ctx, &v1alpha1.WorkflowRun{}); err != nil {
		return rep, fmt.Errorf("the server's informer of workflowruns: %w", err)
	}
	if !conn.GetCache().WaitForCacheSync(ctx) {
		return rep, fmt.Errorf("the server's cache did not sync: %w", ctx.Err())
	}
	rep.cacheSync = time.Since(synced)
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	rep.heap = ms.HeapAlloc
	srv := httptest.NewServer(apiserver.New(apiserver.Options{
		Client: conn.GetClient(), Live: conn.GetAPIReader(), Auth: apiserver.Anonymous{Name: creator},
		Namespace: loadNamespace, SystemNamespace: definition.DefaultSystemNamespace,
	}))
	defer srv.Close()
	logf("API serving %s; cache of %d runs synced in %s", srv.URL, o.runs, rep.cacheSync.Round(time.Millisecond))

	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: slices.Max(o.launchParallel) + 1}}
	for _, q := range []struct{ app, share string }{{appSmall, "1%"}, {appHalf, "50%"}} {
		res, err := lists(ctx, hc, srv.URL, q.app, o)
		if err != nil {
			return rep, err
		}
		res.share = q.share
		rep.lists = append(rep.lists, res)
	}
	if o.launches > 0 {
		body, err := withAppID(doc, appLaunched)
		if err != nil {
			return rep, err
		}
		for _, clients := range o.launchParallel {
			before := sent.snapshot()
			res, err := launches(ctx, hc, srv.URL, body, o.launches, clients)
			if err != nil {
				return rep, err
			}
			res.requests = sent.since(before)
			rep.launch = append(rep.launch, res)
		}
	}
	return rep, nil
}

// store creates o.runs runs as launches of doc make them, with instance
// ids 1..o.runs, then sets the instance id counter to o.runs.
func store(ctx context.Context, c client.Client, doc []byte, o options, rep *report) error {
	docs := map[string][]byte{}
	for i := 0; i < o.runs; i++ {
		id := appOf(i, o.runs)
		if docs[id] == nil {
			d, err := withAppID(doc, id)
			if err != nil {
				return err
			}
			docs[id] = d
		}
	}
	next := atomic.Int64{}
	var failed atomic.Pointer[error]
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < o.parallel; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for failed.Load() == nil && ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= o.runs {
					return
				}
				id := appOf(i, o.runs)
				l, err := app.Build(app.Request{Configuration: docs[id], AppID: id, Category: "DEPLOY", Namespace: loadNamespace, Creator: creator})
				if err == nil {
					l.SetInstanceID(int64(i + 1))
					err = l.Create(ctx, c)
				}
				if err != nil {
					err = fmt.Errorf("storing run %d of app %s: %w", i+1, id, err)
					failed.CompareAndSwap(nil, &err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if errp := failed.Load(); errp != nil {
		return *errp
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	rep.store = time.Since(start)
	logf("stored %d runs in %s", o.runs, rep.store.Round(time.Millisecond))
	counter := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: definition.DefaultSystemNamespace, Name: app.CounterConfigMap},
		Data:       map[string]string{app.CounterKey: strconv.Itoa(o.runs)},
	}
	if err := c.Create(ctx, counter); err != nil {
		return fmt.Errorf("setting the instance id counter to %d: %w", o.runs, err)
	}
	return nil
}

// envelope is the API's answer, data left raw.
type envelope struct {
	Code    int             `json:"code"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data"`
}

// send sends one request and returns its envelope; anything but HTTP 200
// and code 200 is an error.
func send(ctx context.Context, hc *http.Client, method, url, contentType string, body []byte) (envelope, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return envelope{}, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return envelope{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return envelope{}, fmt.Errorf("%s %s: reading the answer: %w", method, url, err)
	}
	var e envelope
	if err := json.Unmarshal(b, &e); err != nil {
		return envelope{}, fmt.Errorf("%s %s: HTTP %d, not an envelope: %s", method, url, resp.StatusCode, b)
	}
	if resp.StatusCode != http.StatusOK || e.Code != http.StatusOK {
		return e, fmt.Errorf("%s %s: HTTP %d, code %d: %s", method, url, resp.StatusCode, e.Code, e.Message)
	}
	return e, nil
}

// lists sends o.requests GET /workflow?appId=id one after another, after
// a few unmeasured ones, and checks each page has the stored runs' total.
func lists(ctx context.Context, hc *http.Client, base, id string, o options) (listResult, error) {
	want := 0
	for i := 0; i < o.runs; i++ {
		if appOf(i, o.runs) == id {
			want++
		}
	}
	url := fmt.Sprintf("%s/workflow?appId=%s&pageSize=%d", base, id, o.pageSize)
	res := listResult{app: id, matching: want}
	for i := -5; i < o.requests; i++ {
		start := time.Now()
		e, err := send(ctx, hc, http.MethodGet, url, "", nil)
		took := time.Since(start)
		if err != nil {
			return res, err
		}
		var page struct {
			Total int               `json:"total"`
			Items []json.RawMessage `json:"items"`
		}
		if err := json.Unmarshal(e.Data, &page); err != nil {
			return res, fmt.Errorf("GET %s: data: %w", url, err)
		}
		if page.Total != want || len(page.Items) != min(want, o.pageSize) {
			return res, fmt.Errorf("GET %s: total %d, %d items; want total %d, %d items", url, page.Total, len(page.Items), want, min(want, o.pageSize))
		}
		if i >= 0 {
			res.latencies = append(res.latencies, took)
		}
	}
	return res, nil
}

// launches sends n POST /workflow/launch from clients clients at once.
func launches(ctx context.Context, hc *http.Client, base string, doc []byte, n, clients int) (launchResult, error) {
	url := base + "/workflow/launch?appId=" + appLaunched + "&category=DEPLOY"
	var (
		next      atomic.Int64
		mu        sync.Mutex
		latencies []time.Duration
		firstErr  error
		wg        sync.WaitGroup
	)
	start := time.Now()
	for w := 0; w < clients; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil && int(next.Add(1)) <= n {
				t := time.Now()
				_, err := send(ctx, hc, http.MethodPost, url, "application/yaml", doc)
				took := time.Since(t)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				stop := firstErr != nil
				if err == nil {
					latencies = append(latencies, took)
				}
				mu.Unlock()
				if stop {
					return
				}
			}
		}()
	}
	wg.Wait()
	res := launchResult{clients: clients, elapsed: time.Since(start), latencies: latencies}
	if firstErr != nil {
		return res, firstErr
	}
	return res, ctx.Err()
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s apiload: %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}

// requestCounter counts the server's requests to the API server by
// method and response code.
type requestCounter struct {
	mu     sync.Mutex
	counts map[string]int
}

func (c *requestCounter) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripper(func(req *http.Request) (*http.Response, error) {
		resp, err := rt.RoundTrip(req)
		key := req.Method + " error"
		if err == nil {
			key = req.Method + " " + strconv.Itoa(resp.StatusCode)
		}
		c.mu.Lock()
		c.counts[key]++
		c.mu.Unlock()
		return resp, err
	})
}

func (c *requestCounter) snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int, len(c.counts))
	for k, v := range c.counts {
		out[k] = v
	}
	return out
}

// since is the counts now minus before.
func (c *requestCounter) since(before map[string]int) map[string]int {
	out := c.snapshot()
	for k, v := range before {
		if out[k] -= v; out[k] == 0 {
			delete(out, k)
		}
	}
	return out
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }
