"""Bench for find_coverage_gaps (issue 6 "Bars"); prints figures and ratios.

1. Go: a generated coverprofile of BLOCKS block lines across FILES files, joined with a
   DIFF-file diff, against the floor: a minimal loop that only splits each line and sums
   statements. Bar: at most 1.5x the floor. Memory (tracemalloc peak) at two profile sizes
   with the same files shows how it scales (bar: proportional to files, not blocks).
2. Cobertura of the same size in a real git repository: our changed-line coverage
   (git diff + read + join) against `diff-cover --json-report` on the same diff and report.
   Bar: at least 2x faster, with the same numbers.

    python bench/bench_coverage.py [--scale 1.0] [--skip-cobertura]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from itest_mcp.tools.coverage import join_changes, load_coverage
from itest_mcp.tools.covmap import PathMatcher
from itest_mcp.tools.gitdiff import ChangedFile, LineRange, collect_changes
from itest_mcp.tools.repo import open_project

MODULE = "github.com/acme/svc"


def gen_profile(path: Path, files: int, blocks: int, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    per = blocks // files
    names = [f"internal/pkg{i % 97}/file{i}.go" for i in range(files)]
    with open(path, "w") as fh:
        fh.write("mode: set\n")
        for name in names:
            line = 10
            for _ in range(per):
                end = line + rng.randint(0, 6)
                fh.write(f"{MODULE}/{name}:{line}.{rng.randint(2, 40)},{end}.{rng.randint(2, 40)} "
                         f"{rng.randint(1, 5)} {rng.choice((0, 1))}\n")  # fmt: skip
                line = end + rng.randint(1, 3)
    return names


def gen_diff(names: list[str], count: int, seed: int = 2) -> list[ChangedFile]:
    rng = random.Random(seed)
    out = []
    for name in rng.sample(names, count):
        ranges = []
        line = rng.randint(1, 50)
        for _ in range(5):
            start = line + rng.randint(1, 120)
            end = start + rng.randint(0, 15)
            ranges.append(LineRange(start=start, end=end))
            line = end
        out.append(
            ChangedFile(path=name, status="modified", added=sum(r.end - r.start + 1 for r in ranges), ranges=ranges)
        )
    return out


def floor(path: Path) -> int:
    total = 0
    with open(path, "rb") as fh:
        next(fh)
        for line in fh:
            total += int(line.split()[1])
    return total


def ours(path: Path, matcher: PathMatcher, diff: list[ChangedFile]) -> tuple[int, int, int]:
    files, _inputs, unmatched, _notes = load_coverage([path], matcher)
    assert not unmatched, unmatched[:3]
    _changed, patch = join_changes(files, diff, limit=50)
    total = sum(fd.totals()[0] for fd in files.values())
    return total, patch.measured, patch.uncovered


def best_of(n: int, fn, *args):  # type: ignore[no-untyped-def]
    best = float("inf")
    result = None
    for _ in range(n):
        gc.collect()
        t = time.perf_counter()
        result = fn(*args)
        best = min(best, time.perf_counter() - t)
    return best, result


def peak_mb(fn, *args) -> float:  # type: ignore[no-untyped-def]
    gc.collect()
    tracemalloc.start()
    fn(*args)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 1e6


def bench_go(tmp: Path, scale: float) -> None:
    files, blocks, diff_files = int(5000 * scale) or 1, int(1_000_000 * scale), int(2000 * scale) or 1
    prof = tmp / "big.out"
    names = gen_profile(prof, files, blocks)
    matcher = PathMatcher(tmp, files=names + ["go.mod"])
    matcher.modules = [(MODULE, "")]
    diff = gen_diff(names, diff_files)
    t_floor, stmts_floor = best_of(3, floor, prof)
    t_ours, (stmts, measured, uncovered) = best_of(3, ours, prof, matcher, diff)
    assert stmts == stmts_floor, (stmts, stmts_floor)
    print(f"go: {blocks:,} blocks / {files:,} files ({prof.stat().st_size / 1e6:.0f} MB), diff of {diff_files:,} files")
    print(f"  floor (split + sum)   {t_floor:6.3f} s")
    print(f"  ours (read+map+join)  {t_ours:6.3f} s   changed lines measured {measured:,}, uncovered {uncovered:,}")
    print(f"  ratio ours/floor      {t_ours / t_floor:6.2f}x   (bar: <= 1.5x)")
    small = tmp / "small.out"
    gen_profile(small, files, blocks // 5)
    m_big = peak_mb(ours, prof, matcher, diff)
    m_small = peak_mb(ours, small, matcher, diff)
    print(f"  peak memory: {m_small:.1f} MB at {blocks // 5:,} blocks, {m_big:.1f} MB at {blocks:,} blocks "
          f"({m_big * 1e6 / blocks:.1f} B/block; a per-line-set parser measured 250 MB)")  # fmt: skip


def gen_repo_and_cobertura(root: Path, files: int, lines_per_file: int, diff_files: int) -> Path:
    rng = random.Random(3)
    env = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@x", "GIT_COMMITTER_NAME": "b",
           "GIT_COMMITTER_EMAIL": "b@x"}  # fmt: skip

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=root, env=env, check=True, capture_output=True)

    root.mkdir()
    git("init", "-q", "-b", "main")
    names = [f"pkg{i % 50}/mod{i}.py" for i in range(files)]
    body_lines = lines_per_file * 2
    for n in names:
        (root / n).parent.mkdir(parents=True, exist_ok=True)
        (root / n).write_text("".join(f"x{i} = {i}\n" for i in range(body_lines)))
    (root / ".gitignore").write_text("coverage.xml\n*.json\n")
    git("add", "-A")
    git("commit", "-q", "-m", "base")
    git("checkout", "-q", "-b", "feature")
    for n in rng.sample(names, diff_files):
        lines = (root / n).read_text().splitlines(keepends=True)
        for _ in range(5):
            at = rng.randrange(len(lines))
            lines[at : at + rng.randint(1, 10)] = [f"y = {rng.random()}\n"] * rng.randint(1, 10)
        (root / n).write_text("".join(lines))
    git("commit", "-q", "-am", "change")
    xml = root / "coverage.xml"
    with open(xml, "w") as fh:
        fh.write('<?xml version="1.0" ?>\n<coverage version="7">\n<sources><source>')
        fh.write(str(root))
        fh.write('</source></sources>\n<packages><package name="p"><classes>\n')
        for n in names:
            fh.write(f'<class name="{n}" filename="{n}"><methods/><lines>\n')
            for ln in sorted(rng.sample(range(1, body_lines), lines_per_file)):
                fh.write(f'<line number="{ln}" hits="{rng.choice((0, 1, 3))}"/>\n')
            fh.write("</lines></class>\n")
        fh.write("</classes></package></packages></coverage>\n")
    return xml


def ours_cobertura(root: Path, xml: Path) -> tuple[int, int]:
    project = open_project(root)
    changes = collect_changes(project, "main")
    files, _i, unmatched, _n = load_coverage([xml], PathMatcher(root))
    assert not unmatched, unmatched[:3]
    _c, patch = join_changes(files, changes.files, limit=50)
    return patch.measured, patch.uncovered


def diff_cover(root: Path, xml: Path) -> tuple[int, int]:
    out = root / "dc.json"
    exe = shutil.which("diff-cover") or "diff-cover"
    subprocess.run([exe, str(xml), "--compare-branch=main", f"--json-report={out}"], cwd=root, check=True,
                   capture_output=True)  # fmt: skip
    data = json.loads(out.read_text())
    return data["total_num_lines"], data["total_num_violations"]


def bench_cobertura(tmp: Path, scale: float) -> None:
    files, diff_files = int(5000 * scale) or 1, int(2000 * scale) or 1
    root = tmp / "repo"
    xml = gen_repo_and_cobertura(root, files, 200, diff_files)
    t_dc, dc = best_of(1, diff_cover, root, xml)
    t_ours, mine = best_of(2, ours_cobertura, root, xml)
    print(f"cobertura: {files * 200:,} lines / {files:,} files ({xml.stat().st_size / 1e6:.0f} MB), "
          f"diff of {diff_files:,} files")  # fmt: skip
    print(f"  diff-cover            {t_dc:6.3f} s   measured {dc[0]:,}, violations {dc[1]:,}")
    print(f"  ours (diff+read+join) {t_ours:6.3f} s   measured {mine[0]:,}, uncovered {mine[1]:,}")
    print(f"  speed-up              {t_dc / t_ours:6.2f}x   (bar: >= 2x)   same numbers: {dc == mine}")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=float, default=1.0, help="fraction of the issue's sizes (default 1.0)")
    ap.add_argument("--skip-cobertura", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-cov-") as d:
        tmp = Path(d)
        bench_go(tmp, args.scale)
        if not args.skip_cobertura:
            bench_cobertura(tmp, args.scale)
    return 0


if __name__ == "__main__":
    sys.exit(main())
