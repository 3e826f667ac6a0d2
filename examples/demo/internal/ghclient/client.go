// Package ghclient is a tiny GitHub-like REST client used by the itest-mcp demo.
package ghclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// Sentinel errors returned (possibly wrapped) by the client.
var (
	ErrUnauthorized     = errors.New("ghclient: unauthorized")
	ErrNotFound         = errors.New("ghclient: not found")
	ErrRetriesExhausted = errors.New("ghclient: retries exhausted")
)

// DefaultBaseURL is used when neither an explicit base URL nor GITHUB_API_URL is set.
const DefaultBaseURL = "https://api.github.com"

// Repo is the subset of a repository resource the demo cares about.
type Repo struct {
	ID            int64  `json:"id"`
	Name          string `json:"name"`
	FullName      string `json:"full_name"`
	DefaultBranch string `json:"default_branch"`
	Private       bool   `json:"private"`
}

// Branch is the subset of a branch resource the demo cares about.
type Branch struct {
	Name      string `json:"name"`
	Protected bool   `json:"protected"`
}

// Client talks to a GitHub-like REST API.
type Client struct {
	BaseURL    string
	Token      string
	HTTP       *http.Client
	MaxRetries int
	Backoff    time.Duration
}

// New returns a client. An empty baseURL falls back to $GITHUB_API_URL, then DefaultBaseURL.
func New(baseURL, token string) *Client {
	if baseURL == "" {
		baseURL = os.Getenv("GITHUB_API_URL")
	}
	if baseURL == "" {
		baseURL = DefaultBaseURL
	}
	return &Client{
		BaseURL:    strings.TrimRight(baseURL, "/"),
		Token:      token,
		HTTP:       &http.Client{Timeout: 10 * time.Second},
		MaxRetries: 3,
		Backoff:    50 * time.Millisecond,
	}
}

// GetRepo fetches /repos/{owner}/{name}.
func (c *Client) GetRepo(ctx context.Context, owner, name string) (*Repo, error) {
	var r Repo
	if err := c.getJSON(ctx, "/repos/"+url.PathEscape(owner)+"/"+url.PathEscape(name), &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// ListBranches fetches /repos/{owner}/{name}/branches, following
// `Link: <...>; rel="next"` pagination headers until the last page.
func (c *Client) ListBranches(ctx context.Context, owner, name string) ([]Branch, error) {
	var all []Branch
	next := c.baseURL() + "/repos/" + url.PathEscape(owner) + "/" + url.PathEscape(name) + "/branches"
	for next != "" {
		body, hdr, err := c.do(ctx, http.MethodGet, next)
		if err != nil {
			return nil, err
		}
		var page []Branch
		if err := json.Unmarshal(body, &page); err != nil {
			return nil, fmt.Errorf("ghclient: decode branches: %w", err)
		}
		all = append(all, page...)
		next = nextLink(hdr.Get("Link"))
	}
	return all, nil
}

// nextLink extracts the rel="next" URL from an RFC 8288 Link header.
func nextLink(link string) string {
	for _, part := range strings.Split(link, ",") {
		segs := strings.Split(part, ";")
		if len(segs) < 2 {
			continue
		}
		u := strings.TrimSpace(segs[0])
		if !strings.HasPrefix(u, "<") || !strings.HasSuffix(u, ">") {
			continue
		}
		for _, p := range segs[1:] {
			if strings.ReplaceAll(strings.TrimSpace(p), " ", "") == `rel="next"` {
				return u[1 : len(u)-1]
			}
		}
	}
	return ""
}

func (c *Client) baseURL() string {
	if c.BaseURL == "" {
		return DefaultBaseURL
	}
	return strings.TrimRight(c.BaseURL, "/")
}

func (c *Client) httpClient() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return http.DefaultClient
}

func (c *Client) getJSON(ctx context.Context, path string, out any) error {
	body, _, err := c.do(ctx, http.MethodGet, c.baseURL()+path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("ghclient: decode %s: %w", path, err)
	}
	return nil
}

// do performs a request to the absolute URL u with retries. It returns the
// body and headers of a 2xx response.
func (c *Client) do(ctx context.Context, method, u string) ([]byte, http.Header, error) {
	backoff := c.Backoff
	if backoff <= 0 {
		backoff = 50 * time.Millisecond
	}
	maxRetries := c.MaxRetries
	if maxRetries < 0 {
		maxRetries = 0
	}
	path := u
	if pu, err := url.Parse(u); err == nil {
		path = pu.RequestURI()
	}

	var lastErr error
	for attempt := 0; attempt <= maxRetries; attempt++ {
		req, err := http.NewRequestWithContext(ctx, method, u, nil)
		if err != nil {
			return nil, nil, err
		}
		req.Header.Set("Accept", "application/vnd.github+json")
		if c.Token != "" {
			req.Header.Set("Authorization", "Bearer "+c.Token)
		}

		wait := backoff
		resp, err := c.httpClient().Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return nil, nil, ctx.Err()
			}
			lastErr = fmt.Errorf("ghclient: %s %s: %w", method, path, err)
		} else {
			body, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			switch {
			case resp.StatusCode >= 200 && resp.StatusCode < 300:
				if rerr != nil {
					return nil, nil, fmt.Errorf("ghclient: read body: %w", rerr)
				}
				return body, resp.Header, nil
			case resp.StatusCode == http.StatusUnauthorized:
				return nil, nil, ErrUnauthorized
			case resp.StatusCode == http.StatusNotFound:
				return nil, nil, fmt.Errorf("%w: %s", ErrNotFound, path)
			case resp.StatusCode == http.StatusTooManyRequests:
				lastErr = fmt.Errorf("ghclient: %s %s: status %d", method, path, resp.StatusCode)
				if d, ok := retryAfter(resp.Header); ok {
					wait = d
				}
			case resp.StatusCode == http.StatusForbidden && resp.Header.Get("X-Ratelimit-Remaining") == "0":
				lastErr = fmt.Errorf("ghclient: %s %s: rate limited", method, path)
				if d, ok := untilReset(resp.Header); ok {
					wait = d
				}
			case resp.StatusCode >= 500:
				lastErr = fmt.Errorf("ghclient: %s %s: status %d", method, path, resp.StatusCode)
			default:
				return nil, nil, fmt.Errorf("ghclient: %s %s: unexpected status %d", method, path, resp.StatusCode)
			}
		}

		if attempt == maxRetries {
			break
		}
		if err := sleep(ctx, wait); err != nil {
			return nil, nil, err
		}
		backoff *= 2
	}
	return nil, nil, fmt.Errorf("%w after %d attempts: %v", ErrRetriesExhausted, maxRetries+1, lastErr)
}

func retryAfter(h http.Header) (time.Duration, bool) {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	secs, err := strconv.Atoi(v)
	if err != nil || secs < 0 {
		return 0, false
	}
	return time.Duration(secs) * time.Second, true
}

func untilReset(h http.Header) (time.Duration, bool) {
	v := strings.TrimSpace(h.Get("X-Ratelimit-Reset"))
	if v == "" {
		return 0, false
	}
	epoch, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, false
	}
	d := time.Until(time.Unix(epoch, 0))
	if d < 0 {
		d = 0
	}
	return d, true
}

// sleep waits for d, or returns ctx.Err() if the context ends first.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
