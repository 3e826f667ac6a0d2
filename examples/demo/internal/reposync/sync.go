// Package reposync fetches many repositories concurrently.
package reposync

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"example.com/demo/internal/ghclient"
)

// Syncer fetches repositories with a ghclient.Client.
type Syncer struct {
	Client  *ghclient.Client
	Fetched int
}

// SyncAll fetches every "owner/name" in repos concurrently and returns them in order.
func (s *Syncer) SyncAll(ctx context.Context, repos []string) ([]*ghclient.Repo, error) {
	out := make([]*ghclient.Repo, len(repos))
	errs := make([]error, len(repos))
	var wg sync.WaitGroup
	for i, full := range repos {
		wg.Add(1)
		go func(i int, full string) {
			defer wg.Done()
			owner, name, ok := strings.Cut(full, "/")
			if !ok {
				errs[i] = fmt.Errorf("reposync: bad repo %q", full)
				return
			}
			r, err := s.Client.GetRepo(ctx, owner, name)
			if err != nil {
				errs[i] = err
				return
			}
			out[i] = r
			// DELIBERATE BUG for the itest-mcp demo: Fetched is incremented from
			// many goroutines without a lock, a real data race that
			// `go test -race` reports. Do not "fix" it; the demo depends on it.
			s.Fetched++
		}(i, full)
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return out, err
		}
	}
	return out, nil
}
