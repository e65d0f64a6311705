package apiserver

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/app"
)

func TestUIDeploys(t *testing.T) {
	ten, other := newTenant(t), newTenant(t)
	srv, _ := serveUI(t, ten.ns, nil)
	doc := servedDoc(t, docServer())
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	daily := map[string]string{app.LabelScope: "daily"}
	prod := map[string]string{app.LabelScope: "prod"}
	type ended struct {
		phase v1alpha1.WorkflowRunPhase
		hours int // end time, t0 + hours; 0: not ended
	}
	for _, r := range []struct {
		name, appID, category string
		scope                 map[string]string
		end                   ended
	}{
		// Created in this order; the history goes by end time.
		{"v2", "shop", "DEPLOY", daily, ended{v1alpha1.WorkflowRunSucceeded, 2}},
		{"v1", "shop", "DEPLOY", daily, ended{v1alpha1.WorkflowRunSucceeded, 1}},
		{"v3", "shop", "DEPLOY", daily, ended{v1alpha1.WorkflowRunFailed, 3}},
		{"back", "shop", "ROLLBACK", daily, ended{v1alpha1.WorkflowRunSucceeded, 4}},
		{"cart", "cart", "DEPLOY", daily, ended{v1alpha1.WorkflowRunSucceeded, 5}},
		{"v4", "shop", "DEPLOY", daily, ended{v1alpha1.WorkflowRunSuspending, 0}},
		{"prod-v1", "shop", "DEPLOY", prod, ended{v1alpha1.WorkflowRunSucceeded, 6}},
		{"failing", "failing", "DEPLOY", daily, ended{v1alpha1.WorkflowRunFailed, 1}},
	} {
		run := create(t, uiRunObj(ten.ns, r.name, r.appID, r.category, r.scope))
		setStatus(t, run, func(st *v1alpha1.WorkflowRunStatus) {
			st.Phase = r.end.phase
			st.StartTime = metav1.NewTime(t0)
			if r.end.hours > 0 {
				st.Finished = true
				st.EndTime = metav1.NewTime(t0.Add(time.Duration(r.end.hours) * time.Hour))
			}
		})
	}
	for _, tc := range []struct {
		appID  string
		items  []string
		target *RunRef
		scope  string // ?scope=; want: the scope answered
	}{
		// v4 is still going (a gray release waiting): the newest, and a
		// rollback from it returns to v2, the newest succeeded DEPLOY run
		// of its scope: not the ROLLBACK, not prod's.
		{"shop", []string{"v4", "prod-v1", "v3", "v2", "v1"}, &RunRef{Namespace: ten.ns, Name: "v2"}, ""},
		// Asked for prod: its runs only, and its own target.
		{"shop", []string{"prod-v1"}, &RunRef{Namespace: ten.ns, Name: "prod-v1"}, "prod"},
		{"shop", []string{}, nil, "staging"},
		{"cart", []string{"cart"}, &RunRef{Namespace: ten.ns, Name: "cart"}, ""},
		{"failing", []string{"failing"}, nil, ""},
		{"none", []string{}, nil, ""},
	} {
		t.Run(tc.appID+"/"+tc.scope, func(t *testing.T) {
			u := srv.URL + "/ui/api/apps/" + ten.ns + "/" + tc.appID + "/deploys"
			if tc.scope != "" {
				u += "?scope=" + tc.scope
			}
			status, body := uiSend(t, http.MethodGet, u, ten.readerTok, "")
			if status != http.StatusOK {
				t.Fatalf("%d %s", status, body)
			}
			conforms(t, doc, "Deploys", body)
			var got Deploys
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatal(err)
			}
			gotNames := []string{}
			for _, it := range got.Items {
				gotNames = append(gotNames, it.Name)
			}
			if d := cmp.Diff(tc.items, gotNames); d != "" {
				t.Errorf("items (-want +got):\n%s", d)
			}
			if d := cmp.Diff(tc.target, got.RollbackTarget); d != "" {
				t.Errorf("rollback target (-want +got):\n%s", d)
			}
			wantScope := tc.scope
			if wantScope == "" && len(tc.items) > 0 {
				wantScope = "daily"
			}
			if got.Scope != wantScope {
				t.Errorf("scope %q, want %q", got.Scope, wantScope)
			}
		})
	}
	if status := uiGet(t, srv.URL+"/ui/api/apps/"+ten.ns+"/shop/deploys", other.readerTok, nil); status != http.StatusForbidden {
		t.Errorf("another tenant: %d, want 403", status)
	}
}
