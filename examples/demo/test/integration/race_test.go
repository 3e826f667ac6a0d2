//go:build integration

package integration

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"example.com/demo/internal/ghclient"
	"example.com/demo/internal/reposync"
)

// TestConcurrentSync passes normally but FAILS UNDER -race on purpose:
// reposync.Syncer.SyncAll increments Syncer.Fetched without a lock.
func TestConcurrentSync(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A short delay keeps all goroutines in flight at the same time.
		time.Sleep(20 * time.Millisecond)
		name := r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]
		writeJSON(w, ghclient.Repo{Name: name, FullName: "octo/" + name, DefaultBranch: "main"})
	}))
	defer srv.Close()

	repos := make([]string, 8)
	for i := range repos {
		repos[i] = fmt.Sprintf("octo/repo-%d", i)
	}

	s := &reposync.Syncer{Client: newTestClient(srv)}
	got, err := s.SyncAll(context.Background(), repos)
	if err != nil {
		t.Fatalf("SyncAll: %v", err)
	}
	if len(got) != len(repos) {
		t.Fatalf("SyncAll returned %d repos, want %d", len(got), len(repos))
	}
	for i, r := range got {
		if want := fmt.Sprintf("octo/repo-%d", i); r == nil || r.FullName != want {
			t.Errorf("repo[%d] = %+v, want %s", i, r, want)
		}
	}
}
