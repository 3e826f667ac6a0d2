//go:build integration

package integration

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"example.com/demo/internal/ghclient"
)

// TestSlowPagination is deliberately slow (~1.5s): it pages through 3 pages of
// branches with a 500ms server delay per page.
func TestSlowPagination(t *testing.T) {
	const pages = 3
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(500 * time.Millisecond)
		page, _ := strconv.Atoi(r.URL.Query().Get("page"))
		if page == 0 {
			page = 1
		}
		if page < pages {
			w.Header().Set("Link", fmt.Sprintf(`<%s%s?page=%d>; rel="next", <%s%s?page=%d>; rel="last"`,
				srv.URL, r.URL.Path, page+1, srv.URL, r.URL.Path, pages))
		}
		writeJSON(w, []ghclient.Branch{
			{Name: fmt.Sprintf("feature-%d-a", page)},
			{Name: fmt.Sprintf("feature-%d-b", page)},
		})
	}))
	defer srv.Close()

	branches, err := newTestClient(srv).ListBranches(context.Background(), "octo", "demo")
	if err != nil {
		t.Fatalf("ListBranches: %v", err)
	}
	if len(branches) != 2*pages {
		t.Fatalf("got %d branches, want %d", len(branches), 2*pages)
	}
	if branches[len(branches)-1].Name != "feature-3-b" {
		t.Errorf("last branch = %q, want %q", branches[len(branches)-1].Name, "feature-3-b")
	}
}
