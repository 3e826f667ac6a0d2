"""Phase discovery on a generated repository of 20,000 files with 300 Go test files. Bar: under 1 s.

Anchor: the bar itself (1 s), plus `git ls-files | wc -l` on the same tree for scale.
Usage: python bench/bench_discovery.py
"""

from __future__ import annotations

import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from itest_mcp.tools.phases import list_phases
from itest_mcp.tools.repo import open_project

TEST_FILE = """\
//go:build integration

package p{n}

import "testing"

func TestCase{n}A(t *testing.T) {{}}
func TestCase{n}B(t *testing.T) {{}}
"""


def generate(root: Path) -> None:
    (root / "go.mod").write_text("module example.com/big\n")
    files = 1
    for d in range(200):
        folder = root / "internal" / f"pkg{d:03d}"
        folder.mkdir(parents=True)
        for f in range(97):
            (folder / f"file{f:03d}.go").write_text(f"package pkg{d:03d}\n\nfunc F{f}() int {{ return {f} }}\n")
            files += 1
    for n in range(300):
        folder = root / "test" / "integration" / f"suite{n // 30:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"case_{n:03d}_test.go").write_text(TEST_FILE.format(n=n))
        files += 1
    while files < 20_000:
        (root / "docs").mkdir(exist_ok=True)
        (root / "docs" / f"page{files}.md").write_text("# page\n")
        files += 1
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        generate(root)
        project = open_project(root)
        times = []
        for _ in range(5):
            started = time.perf_counter()
            listing = list_phases(project)
            times.append(time.perf_counter() - started)
        go_phases = [p for p in listing.phases if p.runner.value == "go"]
        median = statistics.median(times)
        print("files: 20,000 (300 Go integration test files)")
        print(f"phases discovered: {len(listing.phases)} ({len(go_phases)} go)")
        print(f"discovery + argv: median {median * 1000:.0f} ms, max {max(times) * 1000:.0f} ms over 5 runs")
        print(f"ratio to the 1 s bar: {median / 1.0:.2f} {'OK' if median < 1.0 else 'OVER'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
