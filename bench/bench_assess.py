"""Bench assess_changes (issue 5 "Bars").

1. A generated repository of 20,000 files and 2,000 commits (built once with
   `git fast-import`, cached under bench/out/); the range of the last 500 commits
   touches 2,000 files. assess_changes without the import graph must take < 1.5 s
   and at most 3x `git diff --numstat` + `git diff -U0` for the same range.
2. The Go import graph on the demo module: < 2 s cold, < 0.3 s warm (cached).

Run: python bench/bench_assess.py   (BENCH_ROUNDS=N for more side-by-side rounds; default 15)

The ratio is the median of per-round ratios: each round times git and assess back to back
(alternating which goes first) after a warm-up of both, so a busy shared machine slows both
alike. CPU seconds (this process plus its git children) are printed next to wall time: they
are far less sensitive to other people's load.
"""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from itest_mcp.tools.changes import assess_changes
from itest_mcp.tools.repo import open_project

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
REPO = OUT / "assess-repo"
FILES = 20_000
COMMITS = 2_000
RANGE = 500
TOUCH_PER_COMMIT = 4
ENV = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(OUT)}

GO_BODY = """package pkg{d}

import (
\t"context"
\t"net/http"
\t"time"
)

// Fetch{i} fetches one thing; a retry loop would go here.
func Fetch{i}(ctx context.Context, c *http.Client) error {{
\treq, err := http.NewRequestWithContext(ctx, "GET", "https://example.com/{i}", nil)
\tif err != nil {{
\t\treturn err
\t}}
\tc.Timeout = 5 * time.Second
\t_, err = c.Do(req)
\treturn err
}}
"""
PY_BODY = '''"""Module {i}."""

import json


def handler_{i}(payload):
    """Decode the payload."""
    data = json.loads(payload)
    return data.get("value", {i})
'''
MD_BODY = "# Doc {i}\n\nSome words about component {i}.\n"


def path_of(i: int) -> str:
    d = i % 200
    kind = i % 10
    if kind < 6:
        return f"pkg/p{d}/f{i}.go"
    if kind < 9:
        return f"py/m{d}/mod_{i}.py"
    return f"docs/d{d}/doc_{i}.md"


def content(i: int, version: int) -> bytes:
    p = path_of(i)
    if p.endswith(".go"):
        body = GO_BODY.format(d=i % 200, i=i)
    elif p.endswith(".py"):
        body = PY_BODY.format(i=i)
    else:
        body = MD_BODY.format(i=i)
    if version:
        # Each revision changes one line in the middle and appends one.
        lines = body.splitlines(keepends=True)
        middle = len(lines) // 2
        comment = "//" if p.endswith(".go") else "#"
        lines.insert(middle, f"{comment} revision {version}: go func() {{ mu.Lock() }}\n")
        if p.endswith(".go"):
            lines.append(f"\nvar rev{version} = {version} // backoff and retries tuned\n")
        elif p.endswith(".py"):
            lines.append(f"\nREV = {version}  # retries\nimport requests  # noqa\n")
        else:
            lines.append(f"\nRevision {version}.\n")
        body = "".join(lines)
    return body.encode()


def generate() -> None:
    if (REPO / ".git").is_dir() and (REPO / ".bench-ready").is_file():
        return
    shutil.rmtree(REPO, ignore_errors=True)
    REPO.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", "-b", "main", str(REPO)], check=True, env=ENV)
    started = time.perf_counter()
    proc = subprocess.Popen(["git", "fast-import", "--quiet"], cwd=REPO, stdin=subprocess.PIPE, env=ENV)
    assert proc.stdin is not None
    out = proc.stdin
    stamp = 1_700_000_000

    def commit(n: int, changes: list[tuple[str, bytes]]) -> None:
        msg = f"commit {n}".encode()
        out.write(b"commit refs/heads/main\n")
        out.write(f"mark :{n}\n".encode())
        out.write(f"committer bench <bench@example.com> {stamp + n} +0000\n".encode())
        out.write(f"data {len(msg)}\n".encode() + msg + b"\n")
        if n > 1:
            out.write(f"from :{n - 1}\n".encode())
        for path, data in changes:
            out.write(f"M 100644 inline {path}\n".encode())
            out.write(f"data {len(data)}\n".encode() + data + b"\n")

    commit(1, [(path_of(i), content(i, 0)) for i in range(FILES)])
    versions = [0] * FILES
    range_start = COMMITS - RANGE + 1
    for n in range(2, COMMITS + 1):
        if n >= range_start:
            # The last 500 commits touch 2,000 distinct files (4 each).
            k = n - range_start
            ms = [k * TOUCH_PER_COMMIT + j for j in range(TOUCH_PER_COMMIT)]
            touched = [m * 10 + m % 10 for m in ms]  # distinct, and a mix of Go, Python and docs
        else:
            touched = [(n * 7919 + j * 104729) % FILES for j in range(TOUCH_PER_COMMIT)]
        changes = []
        for i in touched:
            versions[i] += 1
            changes.append((path_of(i), content(i, versions[i])))
        commit(n, changes)
    out.close()
    if proc.wait() != 0:
        sys.exit("git fast-import failed")
    subprocess.run(["git", "checkout", "-q", "main"], cwd=REPO, check=True, env=ENV)
    subprocess.run(["git", "tag", "range-base", f"main~{RANGE}"], cwd=REPO, check=True, env=ENV)
    (REPO / ".git" / "info" / "exclude").write_text(".bench-ready\n.itest/\n")
    (REPO / ".bench-ready").write_text("ok\n")
    print(f"generated {FILES} files / {COMMITS} commits in {time.perf_counter() - started:.1f} s")


def timed(fn, repeat: int = 5) -> float:  # type: ignore[no-untyped-def]
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def cpu_now() -> float:
    """CPU seconds of this process and its finished children (user + system)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def measure(fn) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """(wall seconds, CPU seconds incl. children) of one call."""
    cpu0, wall0 = cpu_now(), time.perf_counter()
    fn()
    return time.perf_counter() - wall0, cpu_now() - cpu0


def git_diffs() -> None:
    for extra in (["--numstat"], ["-U0"]):
        subprocess.run(["git", "diff", "--no-color", "--find-renames", *extra, "range-base", "main"], cwd=REPO,
                       check=True, stdout=subprocess.DEVNULL, env=ENV)  # fmt: skip


def main() -> int:
    rounds = int(os.environ.get("BENCH_ROUNDS", "15"))
    generate()
    project = open_project(REPO)

    def assess() -> None:
        assess_changes(project, "range-base", "main", include_worktree=False, import_graph=False)

    first = assess_changes(project, "range-base", "main", include_worktree=False, import_graph=False)
    print(f"range: {first.totals.files} files changed (+{first.totals.added}/-{first.totals.removed}), "
          f"categories: {', '.join(c.category for c in first.categories)}")  # fmt: skip
    ok = True
    # Warm both sides (page cache, git's pack index, Python's regex and glob caches), then time them side by
    # side: each round runs both, alternating which goes first, so load on the shared machine hits both alike.
    git_diffs()
    assess()
    git_w, git_c, as_w, as_c, ratios, cpu_ratios = [], [], [], [], [], []
    for n in range(rounds):
        order = [("git", git_diffs), ("assess", assess)]
        if n % 2:
            order.reverse()
        got = {name: measure(fn) for name, fn in order}
        (gw, gc), (aw, ac) = got["git"], got["assess"]
        git_w.append(gw)
        git_c.append(gc)
        as_w.append(aw)
        as_c.append(ac)
        ratios.append(aw / gw)
        cpu_ratios.append(ac / gc)
    med = statistics.median
    assess_s, git_s, ratio = med(as_w), med(git_w), med(ratios)
    print(f"{rounds} interleaved rounds, medians (wall / CPU incl. git children):")
    print(f"assess_changes (no import graph): {assess_s:.3f} s / {med(as_c):.3f} s CPU   bar < 1.5 s")
    print(f"git diff --numstat + -U0:         {git_s:.3f} s / {med(git_c):.3f} s CPU")
    print(f"ratio (median of round ratios): {ratio:.2f}x wall, {med(cpu_ratios):.2f}x CPU   bar <= 3x, target <= 2x")
    print(f"  per-round wall ratios: {' '.join(f'{r:.2f}' for r in sorted(ratios))}")
    best_a, best_g = min(as_w), min(git_w)
    print(f"  best of each side (least disturbed): {best_a:.3f} s vs {best_g:.3f} s = {best_a / best_g:.2f}x")
    ok &= assess_s < 1.5 and ratio <= 3.0

    with tempfile.TemporaryDirectory() as tmp:
        demo = Path(tmp) / "demo"
        shutil.copytree(ROOT / "examples" / "demo", demo, ignore=shutil.ignore_patterns(".itest", "__pycache__"))
        for args in (["init", "-q", "-b", "main"], ["add", "-A"],
                     ["-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qm", "demo"]):  # fmt: skip
            subprocess.run(["git", *args], cwd=demo, check=True, env=ENV)
        with (demo / "internal/reposync/sync.go").open("a") as handle:
            handle.write("\nfunc benchHelper() int { return 1 }\n")
        demo_project = open_project(demo)
        start = time.perf_counter()
        cold = assess_changes(demo_project)
        cold_s = time.perf_counter() - start
        warm_s = timed(lambda: assess_changes(demo_project))
        warm = assess_changes(demo_project)
        print(f"demo with Go import graph: cold {cold_s:.3f} s (bar < 2 s), warm {warm_s:.3f} s (bar < 0.3 s)")
        print(f"  cold: {cold.import_graph[0]}")
        print(f"  warm: {warm.import_graph[0]}")
        ok &= cold_s < 2.0 and warm_s < 0.3 and "cached" in warm.import_graph[0]
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
