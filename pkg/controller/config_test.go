package controller

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadConfig(t *testing.T) {
	tests := []struct {
		name, file string
		err        string // a substring of the error; "" for none
	}{
		{name: "empty", file: ""},
		{name: "sections", file: "queues: {}\nrateLimits: {}\ncleanup: {}\n"},
		{name: "misspelt section", file: "queue: {}\n", err: `unknown field "queue"`},
		{name: "not YAML", file: "queues: [\n", err: "config.yaml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "config.yaml")
			if err := os.WriteFile(path, []byte(tt.file), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := LoadConfig(path)
			switch {
			case tt.err == "" && err != nil:
				t.Fatalf("LoadConfig: %v", err)
			case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err) || !strings.Contains(err.Error(), path)):
				t.Fatalf("LoadConfig: %v, want an error naming %s and containing %q", err, path, tt.err)
			}
		})
	}
	if _, err := LoadConfig(filepath.Join(t.TempDir(), "absent.yaml")); err == nil {
		t.Error("LoadConfig of an absent file: no error")
	}
}
