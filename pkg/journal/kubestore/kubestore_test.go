package kubestore_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/internal/testenv"
	"github.com/stepflow-dev/stepflow/pkg/journal"
	"github.com/stepflow-dev/stepflow/pkg/journal/kubestore"
	"github.com/stepflow-dev/stepflow/pkg/op"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	var stop func()
	env, stop = testenv.StartMain()
	code := m.Run()
	stop()
	os.Exit(code)
}

// cache is a client whose reads of ConfigMaps come from a copy frozen at
// some moment, as an informer cache that has not seen the latest writes;
// writes go to the API server. It counts the writes.
type cache struct {
	client.Client
	frozen map[types.NamespacedName]*corev1.ConfigMap
	writes atomic.Int32
}

func newCache() *cache {
	return &cache{Client: env.Client, frozen: map[types.NamespacedName]*corev1.ConfigMap{}}
}

// freeze makes reads of the ConfigMap return what the API server has now
// (or NotFound if it has none) until thaw.
func (c *cache) freeze(t *testing.T, key types.NamespacedName) {
	t.Helper()
	var cm corev1.ConfigMap
	err := env.Client.Get(context.Background(), key, &cm)
	switch {
	case apierrors.IsNotFound(err):
		c.frozen[key] = nil
	case err != nil:
		t.Fatal(err)
	default:
		c.frozen[key] = &cm
	}
}

func (c *cache) thaw(key types.NamespacedName) { delete(c.frozen, key) }

func (c *cache) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if cm, ok := obj.(*corev1.ConfigMap); ok {
		if f, frozen := c.frozen[key]; frozen {
			if f == nil {
				return apierrors.NewNotFound(corev1.Resource("configmaps"), key.Name)
			}
			f.DeepCopyInto(cm)
			return nil
		}
	}
	return c.Client.Get(ctx, key, obj, opts...)
}

func (c *cache) Create(ctx context.Context, obj client.Object, opts ...client.CreateOption) error {
	c.writes.Add(1)
	return c.Client.Create(ctx, obj, opts...)
}

func (c *cache) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
	c.writes.Add(1)
	return c.Client.Patch(ctx, obj, patch, opts...)
}

var runs atomic.Int32

// newRun returns a run with a fresh name in the default namespace. The run
// itself is not stored: the store only needs its name, namespace and UID.
func newRun() *v1alpha1.WorkflowRun {
	n := runs.Add(1)
	return &v1alpha1.WorkflowRun{ObjectMeta: metav1.ObjectMeta{
		Name: fmt.Sprintf("run-%d", n), Namespace: "default", UID: types.UID(fmt.Sprintf("uid-%d", n)),
	}}
}

func cmKey(run *v1alpha1.WorkflowRun) types.NamespacedName {
	return types.NamespacedName{Namespace: run.Namespace, Name: kubestore.ContextConfigMapName(run.Name)}
}

// backed records that the run's ConfigMap exists, as the controller does
// in the status once it created it.
func backed(run *v1alpha1.WorkflowRun) *v1alpha1.WorkflowRun {
	run = run.DeepCopy()
	run.Status.ContextBackend = &corev1.ObjectReference{Kind: "ConfigMap", Name: kubestore.ContextConfigMapName(run.Name)}
	return run
}

func openJ(t *testing.T, s journal.Store) *journal.Journal {
	t.Helper()
	j, err := journal.Open(context.Background(), s, journal.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func load(t *testing.T, s journal.Store) journal.Data {
	t.Helper()
	d, err := s.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func record(t *testing.T, j *journal.Journal, key string) {
	t.Helper()
	if err := j.Record(context.Background(), key, journal.Entry{Message: key}); err != nil {
		t.Fatal(err)
	}
}

func setVar(t *testing.T, j *journal.Journal, k string, v any) {
	t.Helper()
	if err := j.SetVar(k, v); err != nil {
		t.Fatal(err)
	}
	if err := j.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func entryKeys(d journal.Data) []string {
	var out []string
	for k := range d.Entries {
		out = append(out, k)
	}
	return out
}

var sorted = cmpopts.SortSlices(func(a, b string) bool { return a < b })

func TestStore(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		test func(t *testing.T, run *v1alpha1.WorkflowRun)
	}{{
		name: "round trip, one write per save, logs in their own key",
		test: func(t *testing.T, run *v1alpha1.WorkflowRun) {
			c := newCache()
			s := kubestore.New(c, run, kubestore.NewMemo())
			if d := load(t, s); len(d.Entries)+len(d.Vars) != 0 {
				t.Fatalf("a run without a ConfigMap loads %+v", d)
			}
			j := openJ(t, s)
			record(t, j, "a-1/post")
			j.StepLog(op.Step{StepName: "a"}, 0, "hello")
			setVar(t, j, "v", map[string]any{"n": 1})
			if n := c.writes.Load(); n != 2 {
				t.Errorf("%d writes for a record and a flush, want 2", n)
			}
			if !s.Created() || !s.Exists() {
				t.Errorf("Created %v, Exists %v after the first save", s.Created(), s.Exists())
			}
			want := j.Data()
			got := load(t, kubestore.New(env.Client, backed(run), nil))
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("loaded (-saved +loaded):\n%s", diff)
			}
			var cm corev1.ConfigMap
			if err := env.Client.Get(ctx, cmKey(run), &cm); err != nil {
				t.Fatal(err)
			}
			if strings.Contains(cm.Data["journal"], "hello") || !strings.Contains(cm.Data["logs"], "hello") {
				t.Errorf("logs not apart from the journal: %v", cm.Data)
			}
			if len(cm.OwnerReferences) != 1 || cm.OwnerReferences[0].UID != run.UID {
				t.Errorf("owner references %+v", cm.OwnerReferences)
			}
		},
	}, {
		name: "a cache behind this process's own write: the memo is read",
		test: func(t *testing.T, run *v1alpha1.WorkflowRun) {
			c, memo := newCache(), kubestore.NewMemo()
			j := openJ(t, kubestore.New(c, run, memo))
			record(t, j, "a-1/first")
			c.freeze(t, cmKey(run))
			record(t, j, "a-1/second")
			// The next reconcile: the cache still has the first write only
			// (or, for a new ConfigMap, nothing at all).
			got := load(t, kubestore.New(c, backed(run), memo))
			if diff := cmp.Diff([]string{"a-1/first", "a-1/second"}, entryKeys(got), sorted); diff != "" {
				t.Errorf("entries through a lagging cache with the memo (-want +got):\n%s", diff)
			}
			// Without the memo (another process), the stale copy is read,
			// but its save cannot overwrite the newer one.
			stale := kubestore.New(c, backed(run), kubestore.NewMemo()).WithLive(env.Client)
			j2 := openJ(t, stale)
			setVar(t, j2, "v", 1)
			c.thaw(cmKey(run))
			got = load(t, kubestore.New(env.Client, backed(run), nil))
			if diff := cmp.Diff([]string{"a-1/first", "a-1/second"}, entryKeys(got), sorted); diff != "" || got.Vars["v"] != 1.0 {
				t.Errorf("after a save from a stale copy: vars %v, entries (-want +got):\n%s", got.Vars, diff)
			}
		},
	}, {
		name: "a cache behind the CLI's write: the run's annotation sends the read to the API server",
		test: func(t *testing.T, run *v1alpha1.WorkflowRun) {
			c, memo := newCache(), kubestore.NewMemo()
			j := openJ(t, kubestore.New(c, run, memo))
			record(t, j, "a-1/post")
			c.freeze(t, cmKey(run))
			cli := kubestore.New(env.Client, backed(run), nil)
			setVar(t, openJ(t, cli), "approved", true)
			annotated := backed(run)
			annotated.Annotations = map[string]string{kubestore.VersionAnnotation: cli.Version()}
			got := load(t, kubestore.New(c, annotated, memo).WithLive(env.Client))
			if got.Vars["approved"] != true || len(got.Entries) != 1 {
				t.Errorf("loaded %+v, want the CLI's variable and the record", got)
			}
		},
	}, {
		name: "two writers: neither loses the other's record or variable",
		test: func(t *testing.T, run *v1alpha1.WorkflowRun) {
			c, memo := newCache(), kubestore.NewMemo()
			ctrl := openJ(t, kubestore.New(c, run, memo).WithLive(env.Client))
			record(t, ctrl, "a-1/first")
			// Both read the journal now.
			ctrl = openJ(t, kubestore.New(c, backed(run), memo).WithLive(env.Client))
			cli := openJ(t, kubestore.New(env.Client, backed(run), nil).WithLive(env.Client))
			record(t, ctrl, "a-1/post")      // the controller records an effect
			setVar(t, cli, "approved", true) // the CLI sets a variable
			record(t, ctrl, "b-1/post")      // the controller, after the CLI
			setVar(t, ctrl, "phase", "two")
			got := load(t, kubestore.New(env.Client, backed(run), nil))
			if diff := cmp.Diff([]string{"a-1/first", "a-1/post", "b-1/post"}, entryKeys(got), sorted); diff != "" {
				t.Errorf("entries (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(map[string]any{"approved": true, "phase": "two"}, got.Vars); diff != "" {
				t.Errorf("variables (-want +got):\n%s", diff)
			}
		},
	}, {
		name: "two writers creating the ConfigMap at once",
		test: func(t *testing.T, run *v1alpha1.WorkflowRun) {
			a := openJ(t, kubestore.New(newCache(), run, kubestore.NewMemo()))
			b := openJ(t, kubestore.New(env.Client, run, nil).WithLive(env.Client))
			record(t, a, "a-1/post")
			setVar(t, b, "v", "b")
			got := load(t, kubestore.New(env.Client, backed(run), nil))
			if len(got.Entries) != 1 || got.Vars["v"] != "b" {
				t.Errorf("loaded %+v, want both writes", got)
			}
		},
	}, {
		name: "size limits: the journal refuses what the API server would",
		test: func(t *testing.T, run *v1alpha1.WorkflowRun) {
			s := kubestore.New(env.Client, run, nil)
			big := journal.Data{Vars: map[string]any{"big": strings.Repeat("x", 1100<<10)}}
			if err := s.Save(ctx, big); err == nil {
				t.Fatal("the API server took a ConfigMap over 1 MiB")
			}
			j := openJ(t, s)
			for i := 0; i < 20; i++ {
				err := j.Record(ctx, fmt.Sprintf("a-1/p%d", i), journal.Entry{Message: strings.Repeat("m", 60<<10)})
				if err != nil {
					if !op.IsPermanent(err) || errors.Is(err, journal.ErrSave) {
						t.Fatalf("record %d: %v, want the journal's own permanent bound", i, err)
					}
					break
				}
			}
			for i := 0; i < 200; i++ {
				j.StepLog(op.Step{StepName: fmt.Sprintf("s%d", i%50)}, 0, strings.Repeat(fmt.Sprint(i), 3000))
			}
			if err := j.Flush(ctx); err != nil {
				t.Fatalf("a journal at its bounds with bounded logs does not save: %v", err)
			}
			var cm corev1.ConfigMap
			if err := env.Client.Get(ctx, cmKey(run), &cm); err != nil {
				t.Fatal(err)
			}
			if n := len(cm.Data["journal"]) + len(cm.Data["logs"]); n > 950<<10 {
				t.Errorf("ConfigMap data is %d bytes, leaving too little headroom under 1 MiB", n)
			}
		},
	}, {
		name: "deleted run: its ConfigMap is not written again",
		test: func(t *testing.T, run *v1alpha1.WorkflowRun) {
			c := newCache()
			j := openJ(t, kubestore.New(c, run, kubestore.NewMemo()))
			record(t, j, "a-1/post")
			// The garbage collector deletes the ConfigMap with its run.
			if err := env.Client.Delete(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: cmKey(run).Name, Namespace: run.Namespace}}); err != nil {
				t.Fatal(err)
			}
			err := j.Record(ctx, "a-1/other", journal.Entry{})
			if err == nil || !errors.Is(err, journal.ErrSave) || !strings.Contains(err.Error(), "gone") {
				t.Errorf("record after the ConfigMap was deleted: %v", err)
			}
			var cm corev1.ConfigMap
			if err := env.Client.Get(ctx, cmKey(run), &cm); !apierrors.IsNotFound(err) {
				t.Errorf("ConfigMap after a save for a deleted run: %v", err)
			}
			if d := load(t, kubestore.New(env.Client, backed(run), nil)); len(d.Entries) != 0 {
				t.Errorf("loaded %+v", d)
			}
		},
	}, {
		// The controller caches only the ConfigMaps with kubestore.RunLabel.
		name: "every write carries the journal label, put back if removed; a name too long for a label value too",
		test: func(t *testing.T, run *v1alpha1.WorkflowRun) {
			long := run.DeepCopy()
			long.Name = run.Name + "-" + strings.Repeat("x", 70)
			for _, r := range []*v1alpha1.WorkflowRun{run, long} {
				s := kubestore.New(env.Client, r, kubestore.NewMemo())
				j := openJ(t, s)
				record(t, j, "a-1/post")
				labelled := func(when string) {
					t.Helper()
					var cm corev1.ConfigMap
					if err := env.Client.Get(ctx, cmKey(r), &cm); err != nil {
						t.Fatal(err)
					}
					if v, ok := cm.Labels[kubestore.RunLabel]; !ok || (v != r.Name && len(r.Name) <= 63) {
						t.Errorf("%s, run %.20s...: labels %v, want %s", when, r.Name, cm.Labels, kubestore.RunLabel)
					}
				}
				labelled("created")
				var cm corev1.ConfigMap
				cm.Namespace, cm.Name = cmKey(r).Namespace, cmKey(r).Name
				if err := env.Client.Patch(ctx, &cm, client.RawPatch(types.MergePatchType,
					[]byte(`{"metadata":{"labels":{"`+kubestore.RunLabel+`":null}}}`))); err != nil {
					t.Fatal(err)
				}
				record(t, j, "a-2/post")
				labelled("patched after the label was removed")
			}
		},
	}} {
		t.Run(tc.name, func(t *testing.T) { tc.test(t, newRun()) })
	}
}
