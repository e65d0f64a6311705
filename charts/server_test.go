package charts

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/labels"
)

// serverName names the REST API server's Deployment, Service,
// ServiceAccount and ClusterRole.
const serverName = release + "-server"

// serverRules are the REST API server's own rights, as README.md
// documents them: what pkg/apiserver, pkg/app's launch and id counter,
// pkg/runop and the journal it writes do with the server's client.
var serverRules = []rbacv1.PolicyRule{
	{APIGroups: []string{"authentication.k8s.io"}, Resources: []string{"tokenreviews"}, Verbs: []string{"create"}},
	{APIGroups: []string{"authorization.k8s.io"}, Resources: []string{"subjectaccessreviews"}, Verbs: []string{"create"}},
	{APIGroups: []string{"core.oam.dev"}, Resources: []string{"workflowruns", "workflows", "workflowstepdefinitions", "componentdefinitions"}, Verbs: []string{"get", "list", "watch"}},
	{APIGroups: []string{"core.oam.dev"}, Resources: []string{"workflowruns"}, Verbs: []string{"create", "patch", "delete"}},
	{APIGroups: []string{"core.oam.dev"}, Resources: []string{"workflowruns/status"}, Verbs: []string{"update"}},
	{APIGroups: []string{"core.oam.dev"}, Resources: []string{"workflowruns/finalizers"}, Verbs: []string{"update"}},
	{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "create", "patch", "watch"}},
	{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
}

// serverCounterRules let the server write the instance id counter back,
// in the system namespace, and nothing else there.
var serverCounterRules = []rbacv1.PolicyRule{
	{APIGroups: []string{""}, Resources: []string{"configmaps"}, ResourceNames: []string{"stepflow-instance-ids"}, Verbs: []string{"update"}},
}

// withoutServer is r without the REST API server's objects.
func (r rendered) withoutServer() rendered {
	var out rendered
	for _, u := range r {
		if u.GetLabels()["app.kubernetes.io/component"] != "server" {
			out = append(out, u)
		}
	}
	return out
}

func TestServerDefaults(t *testing.T) {
	r := render(t, "")
	d := as[appsv1.Deployment](t, r.one(t, "Deployment", namespace, serverName))
	if *d.Spec.Replicas != 1 {
		t.Errorf("replicas %d, want 1", *d.Spec.Replicas)
	}
	pod := d.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers, want the server alone", len(pod.Containers))
	}
	c := pod.Containers[0]
	wantArgs := []string{
		"server",
		"--listen=:8080",
		"--auth=kubernetes",
		"--namespace=default",
		"--system-namespace=vela-system",
		"--rate-limit=20",
		"--rate-burst=40",
		"--review-cache-ttl=5s",
	}
	if diff := cmp.Diff(wantArgs, c.Args); diff != "" {
		t.Errorf("server args (-want +got):\n%s", diff)
	}
	controller := as[appsv1.Deployment](t, r.one(t, "Deployment", namespace, release))
	if c.Image != controller.Spec.Template.Spec.Containers[0].Image {
		t.Errorf("server image %q, not the controller's %q", c.Image, controller.Spec.Template.Spec.Containers[0].Image)
	}
	if p := port(c, "http"); p != 8080 {
		t.Errorf("http container port %d, want 8080", p)
	}
	checkServerProbes(t, c, corev1.URISchemeHTTP)
	if c.SecurityContext == nil || c.SecurityContext.ReadOnlyRootFilesystem == nil || !*c.SecurityContext.ReadOnlyRootFilesystem {
		t.Errorf("server container security context %+v: want a read-only root filesystem, as the controller's", c.SecurityContext)
	}
	if got := c.Resources.Requests[corev1.ResourceMemory]; got.Cmp(resource.MustParse("128Mi")) != 0 {
		t.Errorf("memory request %s, want 128Mi", got.String())
	}
	if len(c.VolumeMounts) != 0 || len(pod.Volumes) != 0 {
		t.Errorf("volumes without a TLS secret: %+v %+v", c.VolumeMounts, pod.Volumes)
	}

	// Its own pods, its own identity.
	sa := r.one(t, "ServiceAccount", namespace, serverName)
	if pod.ServiceAccountName != sa.GetName() || pod.ServiceAccountName == controller.Spec.Template.Spec.ServiceAccountName {
		t.Errorf("server pods run as %q; want their own ServiceAccount %q, not the controller's", pod.ServiceAccountName, sa.GetName())
	}
	serverPods := labels.Set(d.Spec.Template.Labels)
	controllerPods := labels.Set(controller.Spec.Template.Labels)
	if sel := labels.SelectorFromSet(controller.Spec.Selector.MatchLabels); sel.Matches(serverPods) {
		t.Errorf("the controller's selector %s matches the server's pods %v", sel, serverPods)
	}
	if sel := labels.SelectorFromSet(d.Spec.Selector.MatchLabels); !sel.Matches(serverPods) || sel.Matches(controllerPods) {
		t.Errorf("server selector %s: want its own pods %v and not the controller's %v", sel, serverPods, controllerPods)
	}

	svc := as[corev1.Service](t, r.one(t, "Service", namespace, serverName))
	if svc.Spec.Type != corev1.ServiceTypeClusterIP || len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 8080 || svc.Spec.Ports[0].TargetPort.StrVal != "http" {
		t.Errorf("server service %s, ports %+v: want ClusterIP, 8080 to http", svc.Spec.Type, svc.Spec.Ports)
	}
	if sel := labels.SelectorFromSet(svc.Spec.Selector); !sel.Matches(serverPods) || sel.Matches(controllerPods) {
		t.Errorf("server service selector %s: want the server's pods only", sel)
	}
	if metrics := as[corev1.Service](t, r.one(t, "Service", namespace, release+"-metrics")); labels.SelectorFromSet(metrics.Spec.Selector).Matches(serverPods) {
		t.Errorf("the metrics service selects the server's pods")
	}

	checkBound(t, r, "ClusterRole", "", serverName, sa.GetName(), serverRules)
	checkBound(t, r, "Role", "vela-system", serverName+"-instance-ids", sa.GetName(), serverCounterRules)
	checkServerConfined(t, r, sa.GetName())
	checkNoWildcards(t, r)
}

func TestServerOverrides(t *testing.T) {
	r := render(t, `
systemNamespace: workflows
server:
  replicas: 3
  defaultNamespace: team-a
  rateLimit: 2.5
  rateBurst: 5
  reviewCacheTTL: 30s
  service: {type: NodePort, port: 443, annotations: {example.com/lb: internal}}
  tlsSecret: stepflow-server-tls
  resources: {limits: {memory: 1Gi}}
  serviceAccount: {name: api}
`)
	d := as[appsv1.Deployment](t, r.one(t, "Deployment", namespace, serverName))
	if *d.Spec.Replicas != 3 {
		t.Errorf("replicas %d, want 3", *d.Spec.Replicas)
	}
	c := d.Spec.Template.Spec.Containers[0]
	wantArgs := []string{
		"server",
		"--listen=:8080",
		"--auth=kubernetes",
		"--namespace=team-a",
		"--system-namespace=workflows",
		"--rate-limit=2.5",
		"--rate-burst=5",
		"--review-cache-ttl=30s",
		"--tls-cert=/etc/stepflow/server-tls/tls.crt",
		"--tls-key=/etc/stepflow/server-tls/tls.key",
	}
	if diff := cmp.Diff(wantArgs, c.Args); diff != "" {
		t.Errorf("server args (-want +got):\n%s", diff)
	}
	checkServerProbes(t, c, corev1.URISchemeHTTPS)
	if diff := cmp.Diff([]corev1.VolumeMount{{Name: "server-tls", MountPath: "/etc/stepflow/server-tls", ReadOnly: true}}, c.VolumeMounts); diff != "" {
		t.Errorf("volume mounts (-want +got):\n%s", diff)
	}
	vols := d.Spec.Template.Spec.Volumes
	if len(vols) != 1 || vols[0].Secret == nil || vols[0].Secret.SecretName != "stepflow-server-tls" {
		t.Errorf("volumes %+v: want Secret stepflow-server-tls", vols)
	}
	if got := c.Resources.Limits[corev1.ResourceMemory]; got.Cmp(resource.MustParse("1Gi")) != 0 {
		t.Errorf("memory limit %s, want 1Gi", got.String())
	}
	if d.Spec.Template.Spec.ServiceAccountName != "api" {
		t.Errorf("server pods run as %q, want api", d.Spec.Template.Spec.ServiceAccountName)
	}
	r.one(t, "ServiceAccount", namespace, "api")
	svc := as[corev1.Service](t, r.one(t, "Service", namespace, serverName))
	if svc.Spec.Type != corev1.ServiceTypeNodePort || svc.Spec.Ports[0].Port != 443 || svc.Annotations["example.com/lb"] != "internal" {
		t.Errorf("server service %s, ports %+v, annotations %v", svc.Spec.Type, svc.Spec.Ports, svc.Annotations)
	}
	checkBound(t, r, "ClusterRole", "", serverName, "api", serverRules)
	checkBound(t, r, "Role", "workflows", serverName+"-instance-ids", "api", serverCounterRules)
}

func TestServerDisabled(t *testing.T) {
	r := render(t, "server: {enabled: false}\n")
	for _, u := range r {
		if strings.Contains(u.GetName(), "server") || u.GetLabels()["app.kubernetes.io/component"] == "server" {
			t.Errorf("%s %s rendered with server.enabled false", u.GetKind(), u.GetName())
		}
	}
	r.one(t, "Deployment", namespace, release)
}

func TestServerWithoutRBAC(t *testing.T) {
	r := render(t, "rbac: {create: false}\n")
	r.one(t, "Deployment", namespace, serverName)
	if got := append(r.all("ClusterRole"), r.all("Role")...); len(got) != 0 {
		t.Errorf("roles with rbac.create false: %v", names(got))
	}
}

// checkServerProbes checks the probes against the server's unauthenticated
// /healthz and /readyz, on its one port.
func checkServerProbes(t *testing.T, c corev1.Container, scheme corev1.URIScheme) {
	t.Helper()
	for path, probe := range map[string]*corev1.Probe{"/healthz": c.LivenessProbe, "/readyz": c.ReadinessProbe} {
		if probe == nil || probe.HTTPGet == nil || probe.HTTPGet.Path != path || probe.HTTPGet.Port.StrVal != "http" || probe.HTTPGet.Scheme != scheme {
			t.Errorf("want a %s probe of %s on port http, got %+v", scheme, path, probe)
		}
	}
}

// checkServerConfined checks every rule bound to the server's
// ServiceAccount sa: no Secrets, workloads, impersonation or
// ServiceAccounts; ConfigMaps only get, create, patch and watch cluster-wide (the
// counter's update is a Role of one resource name); WorkflowRuns never
// updated whole; and none of the controller's roles.
func checkServerConfined(t *testing.T, r rendered, sa string) {
	t.Helper()
	roles := map[string]rbacv1.ClusterRole{}
	for _, kind := range []string{"ClusterRole", "Role"} {
		for _, u := range r.all(kind) {
			roles[kind+"/"+u.GetNamespace()+"/"+u.GetName()] = as[rbacv1.ClusterRole](t, u)
		}
	}
	var bound []string
	for _, kind := range []string{"ClusterRoleBinding", "RoleBinding"} {
		for _, u := range r.all(kind) {
			b := as[rbacv1.RoleBinding](t, u)
			if !contains(subjectNames(b.Subjects, namespace), sa) {
				continue
			}
			bound = append(bound, b.RoleRef.Name)
			ns := b.Namespace
			if b.RoleRef.Kind == "ClusterRole" {
				ns = ""
			}
			role := roles[b.RoleRef.Kind+"/"+ns+"/"+b.RoleRef.Name]
			for _, rule := range role.Rules {
				for _, res := range rule.Resources {
					switch {
					case res == "secrets" || res == "deployments" || res == "statefulsets" || res == "serviceaccounts":
						t.Errorf("%s %s grants the server %v on %s", b.RoleRef.Kind, b.RoleRef.Name, rule.Verbs, res)
					case res == "configmaps" && b.RoleRef.Kind == "ClusterRole":
						for _, v := range rule.Verbs {
							if !contains([]string{"get", "create", "patch", "watch"}, v) {
								t.Errorf("ClusterRole %s grants the server %s on every configmap", b.RoleRef.Name, v)
							}
						}
					case res == "configmaps" && (len(rule.ResourceNames) != 1 || rule.ResourceNames[0] != "stepflow-instance-ids"):
						t.Errorf("%s %s grants the server %v on configmaps %v, beyond the instance id counter", b.RoleRef.Kind, b.RoleRef.Name, rule.Verbs, rule.ResourceNames)
					case res == "workflowruns" && (contains(rule.Verbs, "update") || contains(rule.Verbs, "deletecollection")):
						t.Errorf("%s %s grants the server %v on workflowruns", b.RoleRef.Kind, b.RoleRef.Name, rule.Verbs)
					}
				}
			}
		}
	}
	if diff := cmp.Diff([]string{serverName, serverName + "-instance-ids"}, bound); diff != "" {
		t.Errorf("roles bound to the server's ServiceAccount (-want +got):\n%s", diff)
	}
}
