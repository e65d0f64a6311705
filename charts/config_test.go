package charts

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/stepflow-dev/stepflow/pkg/controller"
)

const configArg = "--config=/etc/stepflow/config/config.yaml"

func TestConfigDefault(t *testing.T) {
	r := render(t, "")
	if r.has("ConfigMap", namespace, release+"-config") {
		t.Error("an empty config renders a ConfigMap")
	}
	d := as[appsv1.Deployment](t, r.one(t, "Deployment", namespace, release))
	if slices.Contains(d.Spec.Template.Spec.Containers[0].Args, configArg) {
		t.Errorf("an empty config passes %s", configArg)
	}
}

// TestConfig renders a config and loads the file the controller would
// read, through the controller's own loader, next to the metrics
// certificate's volume.
func TestConfig(t *testing.T) {
	r := render(t, `
metrics: {secure: true, certSecret: metrics-tls}
config:
  queues: {}
`)
	d := as[appsv1.Deployment](t, r.one(t, "Deployment", namespace, release))
	pod := d.Spec.Template.Spec
	if !slices.Contains(pod.Containers[0].Args, configArg) {
		t.Fatalf("args %q lack %s", pod.Containers[0].Args, configArg)
	}
	if d.Spec.Template.Annotations["checksum/config"] == "" {
		t.Error("no checksum/config annotation: a changed config would not restart the controller")
	}
	mounts := map[string]string{}
	for _, m := range pod.Containers[0].VolumeMounts {
		mounts[m.Name] = m.MountPath
	}
	if mounts["config"] != "/etc/stepflow/config" || mounts["metrics-tls"] != "/etc/stepflow/metrics-tls" {
		t.Errorf("volume mounts %v, want config and metrics-tls", mounts)
	}
	var fromCM string
	for _, v := range pod.Volumes {
		if v.Name == "config" && v.ConfigMap != nil {
			fromCM = v.ConfigMap.Name
		}
	}
	cm := as[corev1.ConfigMap](t, r.one(t, "ConfigMap", namespace, release+"-config"))
	if fromCM != cm.Name {
		t.Errorf("config volume from ConfigMap %q, want %q", fromCM, cm.Name)
	}
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(cm.Data["config.yaml"]), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := controller.LoadConfig(path); err != nil {
		t.Errorf("the controller cannot load the chart's config:\n%s\n%v", cm.Data["config.yaml"], err)
	}
}
