//go:build integration && performance

package integration

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"example.com/demo/internal/ghclient"
)

// TestPerformanceBulkFetch only builds with -tags=integration,performance, so
// itest-mcp discovers it as its own phase. It fetches 100 repos sequentially
// and requires the whole run to take under one second.
func TestPerformanceBulkFetch(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, ghclient.Repo{Name: "bulk", DefaultBranch: "main"})
	}))
	defer srv.Close()

	c := newTestClient(srv)
	start := time.Now()
	for i := 0; i < 100; i++ {
		if _, err := c.GetRepo(context.Background(), "octo", fmt.Sprintf("bulk-%d", i)); err != nil {
			t.Fatalf("GetRepo #%d: %v", i, err)
		}
	}
	if elapsed := time.Since(start); elapsed >= time.Second {
		t.Errorf("bulk fetch took %v, want < 1s", elapsed)
	}
}
