package apiserver

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/cluster"

	"github.com/stepflow-dev/stepflow/api"
	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/api/v1beta1"
	"github.com/stepflow-dev/stepflow/internal/testenv"
	"github.com/stepflow-dev/stepflow/pkg/app"
	"github.com/stepflow-dev/stepflow/pkg/definition"
	"github.com/stepflow-dev/stepflow/pkg/journal"
	"github.com/stepflow-dev/stepflow/pkg/journal/kubestore"
)

var (
	env *testenv.Env
	// conn is the server's connection, built as the binary builds it.
	conn cluster.Cluster
	// watcher watches for log streams (Options.Watch).
	watcher client.WithWatch
)

func TestMain(m *testing.M) {
	s, err := api.NewScheme()
	if err != nil {
		panic(err)
	}
	var stop func()
	env, stop = testenv.StartMain(testenv.WithCRDs(), testenv.WithScheme(s))
	code := func() int {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		if watcher, err = NewWatch(env.Config); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		if conn, err = NewCluster(env.Config); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		go func() { _ = conn.Start(ctx) }()
		if !conn.GetCache().WaitForCacheSync(ctx) {
			fmt.Fprintln(os.Stderr, "cache did not sync")
			return 1
		}
		if err := installStepDefinitions(ctx, "../../definitions"); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return m.Run()
	}()
	stop()
	os.Exit(code)
}

// systemNS holds the shipped step definitions and the instance id counter.
const systemNS = "stepflow-system"

// installStepDefinitions installs dir/*.cue as WorkflowStepDefinitions in
// systemNS.
func installStepDefinitions(ctx context.Context, dir string) error {
	if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: systemNS}}); err != nil {
		return err
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.cue"))
	if err != nil || len(files) == 0 {
		return fmt.Errorf("step definitions in %s: %d files, %v", dir, len(files), err)
	}
	for _, f := range files {
		src, err := definition.FromFile(f)
		if err != nil {
			return err
		}
		def := &v1beta1.WorkflowStepDefinition{ObjectMeta: metav1.ObjectMeta{Name: src.Name, Namespace: systemNS},
			Spec: v1beta1.WorkflowStepDefinitionSpec{Schematic: &v1beta1.Schematic{CUE: &v1beta1.CUE{Template: src.Template}}}}
		if err := env.Client.Create(ctx, def); err != nil {
			return fmt.Errorf("installing %s: %w", f, err)
		}
	}
	return nil
}

// tenant is a namespace with two ServiceAccounts of namespace "users" as
// its users: reader may get and list workflowruns in it, launcher may
// also create and update (operate on) them.
type tenant struct {
	ns                   string
	readerTok, launchTok string
}

const usersNS = "users"

func newTenant(t testing.TB) tenant {
	t.Helper()
	ctx := context.Background()
	c := env.Client
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "tenant-"}}
	if err := c.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	_ = c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: usersNS}})
	suffix := strings.TrimPrefix(ns.Name, "tenant-")
	reader, launcher := "reader-"+suffix, "launcher-"+suffix
	for name, verbs := range map[string][]string{
		reader:   {"get", "list"},
		launcher: {"get", "list", "create", "update"},
	} {
		sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: usersNS, Name: name}}
		role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: name},
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{v1alpha1.GroupVersion.Group}, Resources: []string{"workflowruns"}, Verbs: verbs}}}
		rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: name},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name},
			Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: usersNS, Name: name}}}
		for _, o := range []client.Object{sa, role, rb} {
			if err := c.Create(ctx, o); err != nil {
				t.Fatal(err)
			}
		}
	}
	return tenant{ns: ns.Name, readerTok: token(t, reader), launchTok: token(t, launcher)}
}

// token is a bearer token of ServiceAccount users/name, from the
// TokenRequest API.
func token(t testing.TB, name string) string {
	t.Helper()
	cs, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := cs.CoreV1().ServiceAccounts(usersNS).CreateToken(context.Background(), name, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("token of serviceaccount %s/%s: %v", usersNS, name, err)
	}
	return tr.Status.Token
}

// serve starts the API over real HTTP, authenticating with Kubernetes.
func serve(t testing.TB, ns string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(New(Options{
		Client:          conn.GetClient(),
		Live:            conn.GetAPIReader(),
		Auth:            NewKubernetes(conn.GetClient(), 5*time.Second, time.Now),
		Namespace:       ns,
		SystemNamespace: systemNS,
		Events:          conn.GetEventRecorderFor("stepflow-server"),
		Watch:           watcher,
	}))
	t.Cleanup(srv.Close)
	return srv
}

// reply is an envelope whose data is decoded later.
type reply struct {
	Envelope
	Data   json.RawMessage `json:"data"`
	status int
}

func send(t testing.TB, method, u, tok, body string) reply {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	req.Header.Set("Content-Type", "application/yaml")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var r reply
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("%s %s: %d, not an envelope: %v\n%s", method, u, resp.StatusCode, err, b)
	}
	if r.RequestID == "" || r.Timestamp == 0 {
		t.Errorf("%s %s: envelope without requestId or timestamp: %s", method, u, b)
	}
	r.status = resp.StatusCode
	return r
}

func (r reply) want(t testing.TB, status, code int) {
	t.Helper()
	if r.status != status || r.Code != code || r.Success != (status == http.StatusOK) {
		t.Fatalf("got HTTP %d, code %d, success %v (%s); want HTTP %d, code %d", r.status, r.Code, r.Success, r.Message, status, code)
	}
}

func grayRelease(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile("../../examples/gray-release.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestHealthNeedsNoToken(t *testing.T) {
	srv := serve(t, "default")
	for _, p := range []string{"/healthz", "/readyz"} {
		send(t, http.MethodGet, srv.URL+p, "", "").want(t, http.StatusOK, http.StatusOK)
	}
	send(t, http.MethodGet, srv.URL+"/nowhere", "", "").want(t, http.StatusNotFound, http.StatusNotFound)
}

func TestUnauthenticatedIs401(t *testing.T) {
	ten := newTenant(t)
	srv := serve(t, ten.ns)
	for name, tok := range map[string]string{"no token": "", "a token the API server rejects": "not-a-token"} {
		t.Run(name, func(t *testing.T) {
			send(t, http.MethodGet, srv.URL+"/workflow", tok, "").want(t, http.StatusUnauthorized, http.StatusUnauthorized)
			send(t, http.MethodPost, srv.URL+"/workflow/launch?appId=a", tok, grayRelease(t)).want(t, http.StatusUnauthorized, http.StatusUnauthorized)
		})
	}
}

func TestReaderMayNotLaunch(t *testing.T) {
	ten := newTenant(t)
	srv := serve(t, ten.ns)
	r := send(t, http.MethodPost, srv.URL+"/workflow/launch?appId=testapp", ten.readerTok, grayRelease(t))
	r.want(t, http.StatusForbidden, http.StatusForbidden)
	if !strings.Contains(r.Message, "may not create workflowruns") {
		t.Errorf("message %q does not say what was denied", r.Message)
	}
	// The launcher may launch only in its own namespace.
	other := newTenant(t)
	send(t, http.MethodPost, srv.URL+"/workflow/launch?appId=testapp&namespace="+other.ns, ten.launchTok, grayRelease(t)).
		want(t, http.StatusForbidden, http.StatusForbidden)
	assertNoRuns(t, ten.ns)
	assertNoRuns(t, other.ns)
}

func TestBadConfigurationIs400AndCreatesNothing(t *testing.T) {
	ten := newTenant(t)
	srv := serve(t, ten.ns)
	dup := strings.Replace(grayRelease(t), "      - type: suspend\n", "      - type: suspend\n        name: twice\n      - type: suspend\n        name: twice\n", 1)
	for name, tc := range map[string]struct{ body, says string }{
		"not YAML":        {"spec: [unclosed", "yaml"},
		"empty body":      {"", "no application configuration"},
		"no app id":       {"apiVersion: core.oam.dev/v1alpha2\nkind: ApplicationConfiguration\nmetadata: {name: x}\nspec: {}\n", "no app id"},
		"duplicate steps": {dup, `step name "twice"`},
		"input without a source": {strings.Replace(grayRelease(t), "      - type: rollout-promotion\n", "      - type: rollout-promotion\n        inputs: [{from: verdict, parameterKey: verdict}]\n", 1),
			`takes input "verdict", which no step outputs`},
		"unknown step type": {strings.Replace(grayRelease(t), "- type: rollout-promotion", "- type: rollout-promotoin", 1),
			`step "rollout-promotoin-4": unknown step type "rollout-promotoin"`},
	} {
		t.Run(name, func(t *testing.T) {
			q := ""
			if name != "no app id" {
				q = "?appId=testapp"
			}
			r := send(t, http.MethodPost, srv.URL+"/workflow/launch"+q, ten.launchTok, tc.body)
			r.want(t, http.StatusBadRequest, CodeBadInput)
			if !strings.Contains(strings.ToLower(r.Message), strings.ToLower(tc.says)) {
				t.Errorf("message %q does not name the problem (%q)", r.Message, tc.says)
			}
		})
	}
	big := grayRelease(t) + "# " + strings.Repeat("x", app.MaxConfigurationSize) + "\n"
	r := send(t, http.MethodPost, srv.URL+"/workflow/launch?appId=testapp", ten.launchTok, big)
	r.want(t, http.StatusRequestEntityTooLarge, http.StatusRequestEntityTooLarge)
	assertNoRuns(t, ten.ns)
}

func TestLaunchGetList(t *testing.T) {
	ten := newTenant(t)
	srv := serve(t, ten.ns)
	var launched []Instance
	for i := 0; i < 3; i++ {
		r := send(t, http.MethodPost, srv.URL+"/workflow/launch?appId=testapp&category=DEPLOY", ten.launchTok, grayRelease(t))
		r.want(t, http.StatusOK, http.StatusOK)
		var in Instance
		if err := json.Unmarshal(r.Data, &in); err != nil {
			t.Fatal(err)
		}
		launched = append(launched, in)
		time.Sleep(1100 * time.Millisecond) // creation timestamps have second precision: newest first needs distinct ones
	}
	first := launched[0]
	creator := "system:serviceaccount:" + usersNS + ":launcher-" + strings.TrimPrefix(ten.ns, "tenant-")
	if first.ID <= 0 || first.AppID != "testapp" || first.Category != "DEPLOY" || first.WorkflowCreator != creator ||
		first.WorkflowOptions != (LaunchOptions{Creator: creator, Category: "DEPLOY"}) || first.WorkflowStatus != "PENDING" ||
		first.WorkflowConfiguration == nil || *first.WorkflowConfiguration != grayRelease(t) || len(first.WorkflowSHA256) != 64 ||
		first.LockVersion == 0 || first.GmtCreate == 0 {
		t.Errorf("launched instance: %+v", first)
	}
	// The launch is audited: an Event on the run names the user.
	eventually(t, func() bool {
		var evs corev1.EventList
		if err := env.Client.List(context.Background(), &evs, client.InNamespace(ten.ns)); err != nil {
			t.Fatal(err)
		}
		for _, e := range evs.Items {
			if e.InvolvedObject.Name == first.Name && e.Reason == "Launched" && strings.Contains(e.Message, "launched by "+creator) {
				return true
			}
		}
		return false
	})
	if launched[1].ID == first.ID {
		t.Errorf("two launches got instance id %d", first.ID)
	}

	// The default category is DEFAULT.
	r := send(t, http.MethodPost, srv.URL+"/workflow/launch?appId=other", ten.launchTok, strings.Replace(grayRelease(t), "appId: testapp", "appId: other", 1))
	r.want(t, http.StatusOK, http.StatusOK)
	var dflt Instance
	if err := json.Unmarshal(r.Data, &dflt); err != nil || dflt.Category != DefaultCategory {
		t.Errorf("launch without category: %+v, %v", dflt, err)
	}

	// GET by numeric id and by namespace/name, as the reader; the cache
	// may not have the run yet.
	for _, id := range []string{fmt.Sprint(first.ID), url.PathEscape(first.Namespace + "/" + first.Name)} {
		var got Instance
		eventually(t, func() bool {
			r := send(t, http.MethodGet, srv.URL+"/workflow/"+id, ten.readerTok, "")
			if r.status != http.StatusOK {
				return false
			}
			return json.Unmarshal(r.Data, &got) == nil
		})
		if got.ID != first.ID || got.Name != first.Name || got.WorkflowConfiguration == nil || got.WorkflowContext == nil {
			t.Errorf("GET /workflow/%s: %+v", id, got)
		}
	}
	// Variables set while the run runs (as stepflow context set writes
	// them, to its journal) are part of its workflowContext, over
	// spec.context.
	var run v1alpha1.WorkflowRun
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: first.Namespace, Name: first.Name}, &run); err != nil {
		t.Fatal(err)
	}
	store := kubestore.New(env.Client, &run, nil).WithLive(env.Client)
	j, err := journal.Open(context.Background(), store, journal.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.SetVar("continueRollout", true); err != nil {
		t.Fatal(err)
	}
	if err := j.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	// As the CLI does after a write to a run's journal from outside the
	// controller.
	run.Annotations[kubestore.VersionAnnotation] = store.Version()
	if err := env.Client.Update(context.Background(), &run); err != nil {
		t.Fatal(err)
	}
	eventually(t, func() bool {
		var cached v1alpha1.WorkflowRun
		return conn.GetClient().Get(context.Background(), client.ObjectKeyFromObject(&run), &cached) == nil &&
			cached.Annotations[kubestore.VersionAnnotation] == store.Version()
	})
	var withVars Instance
	r = send(t, http.MethodGet, srv.URL+"/workflow/"+fmt.Sprint(first.ID), ten.readerTok, "")
	r.want(t, http.StatusOK, http.StatusOK)
	if err := json.Unmarshal(r.Data, &withVars); err != nil || withVars.WorkflowContext["continueRollout"] != true {
		t.Errorf("workflowContext after a context variable was set: %v (%v)", withVars.WorkflowContext, err)
	}

	send(t, http.MethodGet, srv.URL+"/workflow/999999999", ten.readerTok, "").want(t, http.StatusNotFound, http.StatusNotFound)
	send(t, http.MethodGet, srv.URL+"/workflow/"+url.PathEscape(ten.ns+"/missing"), ten.readerTok, "").want(t, http.StatusNotFound, http.StatusNotFound)

	// Lists: newest first, paginated, blobs left out, filtered.
	page := func(q string) Page[map[string]any] {
		t.Helper()
		var p Page[map[string]any]
		eventually(t, func() bool {
			r := send(t, http.MethodGet, srv.URL+"/workflow?"+q, ten.readerTok, "")
			r.want(t, http.StatusOK, http.StatusOK)
			p = Page[map[string]any]{}
			return json.Unmarshal(r.Data, &p) == nil && p.Total == 3
		})
		return p
	}
	ids := func(p Page[map[string]any]) []int64 {
		var out []int64
		for _, it := range p.Items {
			out = append(out, int64(it["id"].(float64)))
			if _, ok := it["workflowConfiguration"]; ok {
				t.Errorf("list item %v has workflowConfiguration", it["id"])
			}
			if _, ok := it["workflowContext"]; ok {
				t.Errorf("list item %v has workflowContext", it["id"])
			}
		}
		return out
	}
	p1 := page("appId=testapp&pageSize=2&page=1")
	p2 := page("appId=testapp&pageSize=2&page=2")
	p3 := page("appId=testapp&pageSize=2&page=3")
	want := fmt.Sprint([]int64{launched[2].ID, launched[1].ID}, []int64{launched[0].ID}, []int64(nil))
	if got := fmt.Sprint(ids(p1), ids(p2), ids(p3)); got != want || p1.Empty || !p3.Empty || p2.Page != 2 || p2.PageSize != 2 {
		t.Errorf("pages of appId=testapp: ids %s, want %s; %+v %+v %+v", got, want, p1, p2, p3)
	}
	page("workflowCreator=" + url.QueryEscape(creator) + "&category=DEPLOY&workflowStatus=PENDING")
	page("labelSelector=" + url.QueryEscape(app.LabelAppID+"=testapp,"+app.LabelCategory+" in (DEPLOY)"))
	r = send(t, http.MethodGet, srv.URL+"/workflow?instanceId="+fmt.Sprint(launched[1].ID), ten.readerTok, "")
	var one Page[Instance]
	if err := json.Unmarshal(r.Data, &one); err != nil || one.Total != 1 || one.Items[0].ID != launched[1].ID {
		t.Errorf("instanceId=%d: %+v, %v", launched[1].ID, one, err)
	}
	r = send(t, http.MethodGet, srv.URL+"/workflow?workflowStatus=SUCCESS", ten.readerTok, "")
	var none Page[Instance]
	if err := json.Unmarshal(r.Data, &none); err != nil || none.Total != 0 || !none.Empty || none.Items == nil {
		t.Errorf("workflowStatus=SUCCESS: %+v, %v", none, err)
	}
	send(t, http.MethodGet, srv.URL+"/workflow?pageSize=0", ten.readerTok, "").want(t, http.StatusBadRequest, CodeBadInput)
	send(t, http.MethodGet, srv.URL+"/workflow?labelSelector=%3D%3D", ten.readerTok, "").want(t, http.StatusBadRequest, CodeBadInput)

	// Another tenant's reader sees none of it.
	other := newTenant(t)
	send(t, http.MethodGet, srv.URL+"/workflow/"+fmt.Sprint(first.ID), other.readerTok, "").want(t, http.StatusForbidden, http.StatusForbidden)
	send(t, http.MethodGet, srv.URL+"/workflow", other.readerTok, "").want(t, http.StatusForbidden, http.StatusForbidden)
}

func TestRateLimitPerUser(t *testing.T) {
	now := time.Unix(1700000000, 0)
	srv := httptest.NewServer(New(Options{
		Client: conn.GetClient(), Auth: Anonymous{Name: "local"}, Namespace: "default",
		RateLimit: 1, Burst: 2, Now: func() time.Time { return now },
	}))
	defer srv.Close()
	u := srv.URL + "/workflow/" + url.PathEscape("default/missing")
	send(t, http.MethodGet, u, "", "").want(t, http.StatusNotFound, http.StatusNotFound)
	send(t, http.MethodGet, u, "", "").want(t, http.StatusNotFound, http.StatusNotFound)
	send(t, http.MethodGet, u, "", "").want(t, http.StatusTooManyRequests, http.StatusTooManyRequests)
	now = now.Add(time.Second) // one token back
	send(t, http.MethodGet, u, "", "").want(t, http.StatusNotFound, http.StatusNotFound)
}

func assertNoRuns(t *testing.T, ns string) {
	t.Helper()
	var runs v1alpha1.WorkflowRunList
	if err := env.Client.List(context.Background(), &runs, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	if len(runs.Items) != 0 {
		t.Errorf("namespace %s has %d runs, want none: the first is %s", ns, len(runs.Items), runs.Items[0].Name)
	}
}

func eventually(t *testing.T, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !ok(); {
		if time.Now().After(deadline) {
			t.Fatal("not so after 10s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
