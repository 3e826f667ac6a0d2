package ghclient

import (
	"net/http"
	"testing"
	"time"
)

func TestNewDefaults(t *testing.T) {
	t.Setenv("GITHUB_API_URL", "")
	c := New("", "tok")
	if c.BaseURL != DefaultBaseURL {
		t.Errorf("BaseURL = %q, want %q", c.BaseURL, DefaultBaseURL)
	}
	if c.Backoff != 50*time.Millisecond {
		t.Errorf("Backoff = %v, want 50ms", c.Backoff)
	}
	if c.Token != "tok" {
		t.Errorf("Token = %q, want %q", c.Token, "tok")
	}
}

func TestNewBaseURLFromEnv(t *testing.T) {
	t.Setenv("GITHUB_API_URL", "http://127.0.0.1:9999/")
	c := New("", "")
	if c.BaseURL != "http://127.0.0.1:9999" {
		t.Errorf("BaseURL = %q, want %q", c.BaseURL, "http://127.0.0.1:9999")
	}
}

func TestRetryAfterParsing(t *testing.T) {
	h := http.Header{}
	h.Set("Retry-After", "2")
	d, ok := retryAfter(h)
	if !ok || d != 2*time.Second {
		t.Errorf("retryAfter = %v, %v; want 2s, true", d, ok)
	}
	h.Set("Retry-After", "soon")
	if _, ok := retryAfter(h); ok {
		t.Errorf("retryAfter accepted a non-numeric value")
	}
}
