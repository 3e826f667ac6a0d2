//go:build integration

// Package integration holds the demo's integration tests. They only talk to
// loopback httptest servers; nothing leaves the machine.
package integration

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"example.com/demo/internal/ghclient"
)

// newTestClient returns a client pointed at srv with fast, deterministic retry settings.
func newTestClient(srv *httptest.Server) *ghclient.Client {
	c := ghclient.New(srv.URL, "test-token")
	c.HTTP = srv.Client()
	c.HTTP.Timeout = 2 * time.Second
	c.Backoff = 10 * time.Millisecond
	return c
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func TestAPIClientGetRepo(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if got := r.Header.Get("Authorization"); got != "Bearer test-token" {
			http.Error(w, "bad auth", http.StatusUnauthorized)
			return
		}
		if got := r.Header.Get("Accept"); got != "application/vnd.github+json" {
			http.Error(w, "bad accept", http.StatusBadRequest)
			return
		}
		if r.URL.Path != "/repos/octo/demo" {
			http.NotFound(w, r)
			return
		}
		writeJSON(w, ghclient.Repo{ID: 42, Name: "demo", FullName: "octo/demo", DefaultBranch: "main"})
	}))
	defer srv.Close()

	repo, err := newTestClient(srv).GetRepo(context.Background(), "octo", "demo")
	if err != nil {
		t.Fatalf("GetRepo: %v", err)
	}
	if repo.ID != 42 || repo.FullName != "octo/demo" {
		t.Errorf("GetRepo = %+v, want id 42 octo/demo", repo)
	}
}

func TestAPIClientNotFound(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.NotFound(w, r)
	}))
	defer srv.Close()

	_, err := newTestClient(srv).GetRepo(context.Background(), "octo", "missing")
	if !errors.Is(err, ghclient.ErrNotFound) {
		t.Fatalf("GetRepo error = %v, want ErrNotFound", err)
	}
}

func TestAPIClientUnauthorized(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"message":"Bad credentials"}`, http.StatusUnauthorized)
	}))
	defer srv.Close()

	_, err := newTestClient(srv).GetRepo(context.Background(), "octo", "demo")
	if !errors.Is(err, ghclient.ErrUnauthorized) {
		t.Fatalf("GetRepo error = %v, want ErrUnauthorized", err)
	}
}

// TestAPIClientDefaultBranch FAILS ON PURPOSE: the server reports "master"
// while the test expects "main". It is the demo's deterministic assertion failure.
func TestAPIClientDefaultBranch(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, ghclient.Repo{ID: 7, Name: "legacy", FullName: "octo/legacy", DefaultBranch: "master"})
	}))
	defer srv.Close()

	repo, err := newTestClient(srv).GetRepo(context.Background(), "octo", "legacy")
	if err != nil {
		t.Fatalf("GetRepo: %v", err)
	}
	got := repo.DefaultBranch
	if got != "main" {
		t.Errorf("default branch = %q, want %q", got, "main")
	}
}
