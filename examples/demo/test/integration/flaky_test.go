//go:build integration

package integration

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// TestFlakyEventualConsistency FAILS ON ITS FIRST ATTEMPT ONLY, on purpose: it
// simulates an eventually consistent backend. State is kept in a marker file in
// $ITEST_RUN_DIR (set by itest-mcp) or $DEMO_FLAKY_DIR, so a rerun passes.
func TestFlakyEventualConsistency(t *testing.T) {
	dir := os.Getenv("ITEST_RUN_DIR")
	if dir == "" {
		dir = os.Getenv("DEMO_FLAKY_DIR")
	}
	if dir == "" {
		t.Skip("set ITEST_RUN_DIR or DEMO_FLAKY_DIR to enable the flaky demo")
	}
	marker := filepath.Join(dir, "flaky-eventual-consistency.marker")
	if _, err := os.Stat(marker); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatalf("create %s: %v", dir, err)
		}
		if err := os.WriteFile(marker, []byte("attempt 1\n"), 0o644); err != nil {
			t.Fatalf("write marker: %v", err)
		}
		t.Fatalf("eventual consistency: repo not visible yet (attempt 1)")
	} else if err != nil {
		t.Fatalf("stat marker: %v", err)
	}
}
