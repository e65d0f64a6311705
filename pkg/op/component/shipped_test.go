package component_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stepflow-dev/stepflow/pkg/eval"
)

// The shipped component types, rendered through the render op as a step
// would, against the objects they must produce.
func TestShippedComponentTypes(t *testing.T) {
	ev := newEvaluator(t, shipped(t))
	for _, tc := range []struct {
		name    string
		params  string // the render op's $params, YAML
		want    string // the objects, YAML
		wantErr []string
	}{{
		name: "K8S_MICROSERVICE: a Deployment by default",
		params: `
type: K8S_MICROSERVICE
name: web
properties: {image: "nginx:1.27", somethingSREWorksSends: {a: 1}}
`,
		want: `
- apiVersion: apps/v1
  kind: Deployment
  metadata: {name: web, namespace: team-a, labels: {app.oam.dev/component: web}}
  spec:
    replicas: 1
    selector: {matchLabels: {app.oam.dev/component: web}}
    template:
      metadata: {labels: {app.oam.dev/component: web}}
      spec:
        containers: [{name: web, image: "nginx:1.27"}]
`,
	}, {
		name: "StatefulSet without a rollout: partition 0",
		params: `
type: K8S_MICROSERVICE
name: db
context: {appId: testapp}
properties: {kind: StatefulSet, image: "pg:16", replicas: 3}
`,
		want: `
- apiVersion: apps/v1
  kind: StatefulSet
  metadata: {name: db, namespace: team-a, labels: {app.oam.dev/component: db, stepflow.dev/app-id: testapp}}
  spec:
    replicas: 3
    serviceName: db
    updateStrategy: {type: RollingUpdate, rollingUpdate: {partition: 0}}
    selector: {matchLabels: {app.oam.dev/component: db}}
    template:
      metadata: {labels: {app.oam.dev/component: db}}
      spec:
        containers: [{name: db, image: "pg:16"}]
`,
	}, {
		name: "StatefulSet with context.rollout: its partition",
		params: `
type: K8S_MICROSERVICE
name: db
namespace: abm-daily
context: {rollout: {partition: 1, name: abmRolloutPartition}}
properties: {kind: StatefulSet, image: "pg:16", replicas: 3}
`,
		want: `
- apiVersion: apps/v1
  kind: StatefulSet
  metadata: {name: db, namespace: abm-daily, labels: {app.oam.dev/component: db}}
  spec:
    replicas: 3
    serviceName: db
    updateStrategy: {type: RollingUpdate, rollingUpdate: {partition: 1}}
    selector: {matchLabels: {app.oam.dev/component: db}}
    template:
      metadata: {labels: {app.oam.dev/component: db}}
      spec:
        containers: [{name: db, image: "pg:16"}]
`,
	}, {
		name: "ports: container ports and a Service; env in name order; resources",
		params: `
type: k8s-microservice
name: api
properties:
  image: api:2
  replicas: 2
  env: {ZED: "z", ALPHA: 1, DEBUG: true}
  ports: [{port: 8080}, {port: 9090, name: metrics, protocol: TCP}, {port: 53, protocol: UDP}]
  resources: {limits: {cpu: 500m}}
`,
		want: `
- apiVersion: apps/v1
  kind: Deployment
  metadata: {name: api, namespace: team-a, labels: {app.oam.dev/component: api}}
  spec:
    replicas: 2
    selector: {matchLabels: {app.oam.dev/component: api}}
    template:
      metadata: {labels: {app.oam.dev/component: api}}
      spec:
        containers:
        - name: api
          image: api:2
          env: [{name: ALPHA, value: "1"}, {name: DEBUG, value: "true"}, {name: ZED, value: z}]
          ports:
          - {containerPort: 8080, name: port-8080, protocol: TCP}
          - {containerPort: 9090, name: metrics, protocol: TCP}
          - {containerPort: 53, name: port-53, protocol: UDP}
          resources: {limits: {cpu: 500m}}
- apiVersion: v1
  kind: Service
  metadata: {name: api, namespace: team-a, labels: {app.oam.dev/component: api}}
  spec:
    selector: {app.oam.dev/component: api}
    ports:
    - {port: 8080, targetPort: 8080, name: port-8080, protocol: TCP}
    - {port: 9090, targetPort: 9090, name: metrics, protocol: TCP}
    - {port: 53, targetPort: 53, name: port-53, protocol: UDP}
`,
	}, {
		name: "empty ports: no Service",
		params: `
type: K8S_MICROSERVICE
name: web
properties: {image: "nginx", ports: []}
`,
		want: `
- apiVersion: apps/v1
  kind: Deployment
  metadata: {name: web, namespace: team-a, labels: {app.oam.dev/component: web}}
  spec:
    replicas: 1
    selector: {matchLabels: {app.oam.dev/component: web}}
    template:
      metadata: {labels: {app.oam.dev/component: web}}
      spec:
        containers: [{name: web, image: "nginx"}]
`,
	}, {
		name: "K8S_MICROSERVICE without an image fails, naming it",
		params: `
type: K8S_MICROSERVICE
name: web
properties: {replicas: 2}
`,
		wantErr: []string{`component "web" (type "K8S_MICROSERVICE")`, "image"},
	}, {
		name: "K8S_MICROSERVICE with a kind it does not know fails",
		params: `
type: K8S_MICROSERVICE
name: web
properties: {image: x, kind: DaemonSet}
`,
		wantErr: []string{`component "web" (type "K8S_MICROSERVICE")`, "kind"},
	}, {
		name: "K8S_OBJECTS: the manifests in the order given",
		params: `
type: K8S_OBJECTS
name: raw
properties:
  objects:
  - {apiVersion: v1, kind: Namespace, metadata: {name: n0}}
  - {apiVersion: v1, kind: ConfigMap, metadata: {name: c1}, data: {k: v}}
  - {apiVersion: v1, kind: ConfigMap, metadata: {name: c2, namespace: other}}
  - {apiVersion: v1, kind: ConfigMap, metadata: {name: c3}}
  - {apiVersion: v1, kind: ConfigMap, metadata: {name: c4}}
  - {apiVersion: v1, kind: ConfigMap, metadata: {name: c5}}
  - {apiVersion: v1, kind: ConfigMap, metadata: {name: c6}}
  - {apiVersion: v1, kind: ConfigMap, metadata: {name: c7}}
  - {apiVersion: v1, kind: ConfigMap, metadata: {name: c8}}
  - {apiVersion: v1, kind: ConfigMap, metadata: {name: c9}}
  - {apiVersion: v1, kind: ConfigMap, metadata: {name: c10}}
`,
		want: `
- {apiVersion: v1, kind: Namespace, metadata: {name: n0, labels: {app.oam.dev/component: raw}}}
- {apiVersion: v1, kind: ConfigMap, metadata: {name: c1, namespace: team-a, labels: {app.oam.dev/component: raw}}, data: {k: v}}
- {apiVersion: v1, kind: ConfigMap, metadata: {name: c2, namespace: other, labels: {app.oam.dev/component: raw}}}
- {apiVersion: v1, kind: ConfigMap, metadata: {name: c3, namespace: team-a, labels: {app.oam.dev/component: raw}}}
- {apiVersion: v1, kind: ConfigMap, metadata: {name: c4, namespace: team-a, labels: {app.oam.dev/component: raw}}}
- {apiVersion: v1, kind: ConfigMap, metadata: {name: c5, namespace: team-a, labels: {app.oam.dev/component: raw}}}
- {apiVersion: v1, kind: ConfigMap, metadata: {name: c6, namespace: team-a, labels: {app.oam.dev/component: raw}}}
- {apiVersion: v1, kind: ConfigMap, metadata: {name: c7, namespace: team-a, labels: {app.oam.dev/component: raw}}}
- {apiVersion: v1, kind: ConfigMap, metadata: {name: c8, namespace: team-a, labels: {app.oam.dev/component: raw}}}
- {apiVersion: v1, kind: ConfigMap, metadata: {name: c9, namespace: team-a, labels: {app.oam.dev/component: raw}}}
- {apiVersion: v1, kind: ConfigMap, metadata: {name: c10, namespace: team-a, labels: {app.oam.dev/component: raw}}}
`,
	}, {
		name: "K8S_OBJECTS with no objects fails",
		params: `
type: K8S_OBJECTS
name: raw
properties: {objects: []}
`,
		wantErr: []string{`component "raw" (type "K8S_OBJECTS")`, "renders no objects"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			params := fromYAML(t, tc.params).(map[string]any)
			objs, out := render(t, ev, renderStep, params)
			if tc.wantErr != nil {
				if out.Phase != eval.Failed {
					t.Fatalf("phase %s (%s), want failed", out.Phase, out.Message)
				}
				t.Log(out.Message)
				for _, part := range tc.wantErr {
					if !strings.Contains(out.Message, part) {
						t.Errorf("message %q does not contain %q", out.Message, part)
					}
				}
				return
			}
			if out.Phase != eval.Succeeded {
				t.Fatalf("phase %s: %s", out.Phase, out.Message)
			}
			if diff := cmp.Diff(fromYAML(t, tc.want), plain(t, objs)); diff != "" {
				t.Errorf("objects (-want +got):\n%s", diff)
			}
		})
	}
}
