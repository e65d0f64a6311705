package controller

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCleanupConfigLoads(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	c, err := LoadConfig(write("ok.yaml", "cleanup:\n  ttlSecondsAfterFinished: 604800\n  rollbackTargets: 5\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Cleanup.TTLSecondsAfterFinished == nil || *c.Cleanup.TTLSecondsAfterFinished != 604800 || c.Cleanup.RollbackTargets != 5 {
		t.Errorf("cleanup = %+v", c.Cleanup)
	}
	r := &CleanupReconciler{Config: c.Cleanup}
	if got := r.keepTargets(); got != 5 {
		t.Errorf("rollback targets %d, want 5", got)
	}
	if got := (&CleanupReconciler{Config: CleanupConfig{RollbackTargets: 1}}).keepTargets(); got != DefaultRollbackTargets {
		t.Errorf("rollback targets below the minimum: %d, want %d", got, DefaultRollbackTargets)
	}
	if _, err := LoadConfig(write("typo.yaml", "cleanup:\n  ttlSecondAfterFinished: 60\n")); err == nil || !strings.Contains(err.Error(), "typo.yaml") {
		t.Errorf("a misspelt cleanup key: %v, want an error naming the file", err)
	}
}
