//go:build integration

package integration

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"example.com/demo/internal/ghclient"
)

func TestNetworkEdgeCases(t *testing.T) {
	t.Run("connection_timeout", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// Sleep far longer than the client's 100ms timeout, but stop as
			// soon as the client hangs up so srv.Close() returns promptly.
			select {
			case <-time.After(2 * time.Second):
			case <-r.Context().Done():
				return
			}
			writeJSON(w, ghclient.Repo{Name: "slow"})
		}))
		defer srv.Close()

		c := newTestClient(srv)
		c.HTTP.Timeout = 100 * time.Millisecond
		c.MaxRetries = 0

		start := time.Now()
		_, err := c.GetRepo(context.Background(), "octo", "slow")
		elapsed := time.Since(start)
		if err == nil {
			t.Fatalf("GetRepo succeeded, want a timeout error")
		}
		if elapsed > time.Second {
			t.Errorf("GetRepo took %v, want the 100ms timeout to fire quickly", elapsed)
		}
	})

	t.Run("retry_after_503", func(t *testing.T) {
		var attempts atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if attempts.Add(1) <= 2 {
				http.Error(w, "unavailable", http.StatusServiceUnavailable)
				return
			}
			writeJSON(w, ghclient.Repo{Name: "demo", DefaultBranch: "main"})
		}))
		defer srv.Close()

		c := newTestClient(srv)
		c.MaxRetries = 3
		repo, err := c.GetRepo(context.Background(), "octo", "demo")
		if err != nil {
			t.Fatalf("GetRepo: %v", err)
		}
		if repo.Name != "demo" {
			t.Errorf("repo name = %q, want %q", repo.Name, "demo")
		}
		if n := attempts.Load(); n != 3 {
			t.Errorf("attempts = %d, want 3", n)
		}
	})

	t.Run("rate_limit_429_retry_after", func(t *testing.T) {
		var attempts atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if attempts.Add(1) == 1 {
				w.Header().Set("Retry-After", "1")
				http.Error(w, "slow down", http.StatusTooManyRequests)
				return
			}
			writeJSON(w, ghclient.Repo{Name: "demo"})
		}))
		defer srv.Close()

		c := newTestClient(srv)
		start := time.Now()
		if _, err := c.GetRepo(context.Background(), "octo", "demo"); err != nil {
			t.Fatalf("GetRepo: %v", err)
		}
		if elapsed := time.Since(start); elapsed < time.Second {
			t.Errorf("client waited %v, want >= 1s (Retry-After: 1)", elapsed)
		}
		if n := attempts.Load(); n != 2 {
			t.Errorf("attempts = %d, want 2", n)
		}
	})
}
