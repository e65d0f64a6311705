package apiserver

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/app"
)

// BenchmarkListByAppID is GET /workflow?appId=...&pageSize=20 over real
// HTTP, through the cache, with 2,000 runs in the namespace, half of them
// the app's (newest first, so all 1,000 are sorted for every page).
// Reviews are cached, so this is the handler and the cache.
func BenchmarkListByAppID(b *testing.B) {
	ten := newTenant(b)
	ctx := context.Background()
	const total = 2000
	for i := 0; i < total; i++ {
		appID := "load"
		if i%2 == 1 {
			appID = "other"
		}
		run := &v1alpha1.WorkflowRun{ObjectMeta: metav1.ObjectMeta{
			Namespace: ten.ns, Name: fmt.Sprintf("run-%d", i),
			Labels:      map[string]string{app.LabelAppID: appID, app.LabelCategory: "DEPLOY", app.LabelInstanceID: fmt.Sprint(1_000_000 + i)},
			Annotations: map[string]string{app.AnnotationRawAppID: appID, app.AnnotationCreator: "bench"},
		}}
		if err := env.Client.Create(ctx, run); err != nil {
			b.Fatal(err)
		}
	}
	srv := serve(b, ten.ns)
	u := srv.URL + "/workflow?appId=load&pageSize=20&page=3"
	deadline := time.Now().Add(30 * time.Second)
	for {
		var runs v1alpha1.WorkflowRunList
		if err := conn.GetClient().List(ctx, &runs, client.InNamespace(ten.ns)); err != nil {
			b.Fatal(err)
		}
		if len(runs.Items) == total || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	send(b, http.MethodGet, u, ten.readerTok, "").want(b, http.StatusOK, http.StatusOK)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := send(b, http.MethodGet, u, ten.readerTok, "")
		if r.status != http.StatusOK {
			b.Fatalf("GET: %d %s", r.status, r.Message)
		}
	}
}

// BenchmarkLaunch is POST /workflow/launch of the gray release over real
// HTTP, one after another: build, step types looked up, an instance id
// allocated (a counter update) and the run created, plus the cached
// reviews.
func BenchmarkLaunch(b *testing.B) {
	ten := newTenant(b)
	srv := serve(b, ten.ns)
	body := grayRelease(b)
	u := srv.URL + "/workflow/launch?appId=testapp&category=DEPLOY"
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := send(b, http.MethodPost, u, ten.launchTok, body)
		if r.status != http.StatusOK {
			b.Fatalf("launch: %d %s", r.status, r.Message)
		}
	}
}
