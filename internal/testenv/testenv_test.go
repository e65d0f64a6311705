package testenv

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestStart(t *testing.T) {
	env := Start(t, WithCRDs())
	var namespaces corev1.NamespaceList
	if err := env.Client.List(context.Background(), &namespaces); err != nil {
		t.Fatal(err)
	}
	if len(namespaces.Items) == 0 {
		t.Error("a fresh API server lists no namespaces")
	}
}

func TestAssetsMissing(t *testing.T) {
	t.Setenv("KUBEBUILDER_ASSETS", t.TempDir())
	_, err := Assets()
	if err == nil || !strings.Contains(err.Error(), "no kube-apiserver in") {
		t.Errorf("want an error naming the missing binary, got %v", err)
	}
}
