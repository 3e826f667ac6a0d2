"""Bench for find_coverage_gaps (issue 6 "Bars"); prints figures and ratios.

1. Go: a generated coverprofile of BLOCKS block lines across FILES files, joined with a
   DIFF-file diff, against the floor: a minimal loop that only splits each line and sums
   statements. Bar: at most 1.5x the floor (median of 3 runs, floor and ours interleaved).
   As in find_coverage_gaps, the diff is known before the read, so the profile is joined with
   it while it streams (one pass; blocks meeting changed lines kept per changed file).
   Peak memory (tracemalloc) at 200k / 1M / 2M blocks over the same files shows how it
   scales (bar: proportional to files, not blocks), with the compiled helper's own peak RSS.
   A profile this big is read by the compiled helper (tools/covprofile.go, built once before
   anything is timed); the Python reader alone (a machine without go) is timed beside it.
2. Cobertura of the same size in a real git repository: our changed-line coverage
   (git diff + read + join) against `diff-cover --json-report` on the same diff and report.
   Bar: at least 2x faster, with the same numbers.
3. `--huge`: a ~1 GB profile written to bench/out/ (deleted afterwards), read and joined in a
   child process: wall time and the child's peak RSS (flat: the profile streams).

    python bench/bench_coverage.py [--scale 1.0] [--skip-cobertura] [--skip-memory] [--huge]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from peak_memory import peak_rss_bytes

from itest_mcp.tools import covnative
from itest_mcp.tools.coverage import join_changes, load_coverage
from itest_mcp.tools.covmap import PathMatcher
from itest_mcp.tools.gitdiff import ChangedFile, LineRange, collect_changes
from itest_mcp.tools.proctree import vm_hwm_kb
from itest_mcp.tools.repo import open_project

MODULE = "github.com/acme/svc"
OUT = Path(__file__).resolve().parent / "out"


def file_names(files: int) -> list[str]:
    return [f"internal/pkg{i % 97}/file{i}.go" for i in range(files)]


def gen_profile(path: Path, files: int, blocks: int, seed: int = 1) -> list[str]:
    """A `mode: set` profile: `blocks` block lines over `files` files (bodies drawn from 64 random ones)."""
    rng = random.Random(seed)
    per = max(1, blocks // files)
    bodies = []
    for _ in range(64):
        line = 10
        body = []
        for _ in range(per):
            end = line + rng.randint(0, 6)
            body.append(f":{line}.{rng.randint(2, 40)},{end}.{rng.randint(2, 40)} {rng.randint(1, 5)} ")
            line = end + rng.randint(1, 3)
        bodies.append(body)
    names = file_names(files)
    with open(path, "w") as fh:
        fh.write("mode: set\n")
        for name in names:
            full = f"{MODULE}/{name}"
            body = bodies[rng.randrange(64)]
            hits = rng.choices("01", k=len(body))
            fh.write("".join(f"{full}{b}{h}\n" for b, h in zip(body, hits, strict=True)))
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
    # As find_coverage_gaps does: the diff is known first, so the profile is joined with it while it streams.
    files, _inputs, unmatched, _notes = load_coverage([path], matcher, changed=diff)
    assert not unmatched, unmatched[:3]
    _changed, patch = join_changes(files, diff, limit=50)
    total = sum(fd.totals()[0] for fd in files.values())
    return total, patch.measured, patch.uncovered


def ours_python(path: Path, matcher: PathMatcher, diff: list[ChangedFile]) -> tuple[int, int, int]:
    """`ours` with the compiled helper turned off: the Python reader alone (what a machine without go gets)."""
    covnative.NATIVE_MIN_BYTES, saved = 1 << 62, covnative.NATIVE_MIN_BYTES
    try:
        return ours(path, matcher, diff)
    finally:
        covnative.NATIVE_MIN_BYTES = saved


def build_helper() -> str:
    """Build (or find) the compiled profile reader before anything is timed; say what it cost."""
    t = time.perf_counter()
    binary = covnative.helper_path()
    took = time.perf_counter() - t
    if binary is None:
        return "compiled helper: unavailable (no go?) -> the Python reader is timed"
    return f"compiled helper: {binary.name}, ready in {took:.2f} s (built once per machine and helper version)"


def best_of(n: int, fn, *args):  # type: ignore[no-untyped-def]
    best = float("inf")
    result = None
    for _ in range(n):
        gc.collect()
        t = time.perf_counter()
        result = fn(*args)
        best = min(best, time.perf_counter() - t)
    return best, result


def interleaved(n: int, fns: dict) -> tuple[dict[str, float], dict]:  # type: ignore[type-arg]
    """Median wall time of each function over n rounds, run one after the other in every round."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    results = {}
    for _ in range(n):
        for name, (fn, args) in fns.items():
            gc.collect()
            t = time.perf_counter()
            results[name] = fn(*args)
            times[name].append(time.perf_counter() - t)
    return {k: statistics.median(v) for k, v in times.items()}, results


def peak_mb(fn, *args) -> float:  # type: ignore[no-untyped-def]
    gc.collect()
    tracemalloc.start()
    fn(*args)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 1e6


def helper_peak_mb(path: Path) -> float | None:
    """Peak RSS of the compiled helper reading `path`: its VmHWM, read from /proc while it runs.

    (Not ru_maxrss: a child keeps the high-water mark of the process it was forked from, see peak_memory.py.)
    """
    binary = covnative.helper_path()
    if binary is None or not Path("/proc/self/status").exists():
        return None
    peak = 0
    with subprocess.Popen([str(binary), str(path)], stdout=subprocess.DEVNULL) as proc:
        while proc.poll() is None:
            peak = max(peak, vm_hwm_kb(proc.pid) * 1024)
            time.sleep(0.002)
    return peak / 1e6 if proc.returncode == 0 and peak else None


def go_matcher(root: Path, names: list[str]) -> PathMatcher:
    matcher = PathMatcher(root, files=names + ["go.mod"])
    matcher.modules = [(MODULE, "")]
    return matcher


def bench_go(tmp: Path, scale: float, memory: bool) -> None:
    files, blocks, diff_files = int(5000 * scale) or 1, int(1_000_000 * scale), int(2000 * scale) or 1
    prof = tmp / "big.out"
    names = gen_profile(prof, files, blocks)
    matcher = go_matcher(tmp, names)
    diff = gen_diff(names, diff_files)
    helper = build_helper()
    med, res = interleaved(
        3,
        {
            "floor": (floor, (prof,)),
            "ours": (ours, (prof, matcher, diff)),
            "python": (ours_python, (prof, matcher, diff)),
        },
    )
    stmts, measured, uncovered = res["ours"]
    assert stmts == res["floor"], (stmts, res["floor"])
    assert res["python"] == res["ours"], (res["python"], res["ours"])
    print(f"go: {blocks:,} blocks / {files:,} files ({prof.stat().st_size / 1e6:.0f} MB), diff of {diff_files:,} files")
    print(f"  {helper}")
    print(f"  floor (split + sum)   {med['floor']:6.3f} s   (median of 3, interleaved)")
    print(
        f"  ours (read+map+join)  {med['ours']:6.3f} s   changed lines measured {measured:,}, uncovered {uncovered:,}"
    )
    print(f"  ratio ours/floor      {med['ours'] / med['floor']:6.2f}x   (bar: <= 1.5x)")
    print(
        f"  Python reader alone   {med['python']:6.3f} s   ratio {med['python'] / med['floor']:.2f}x "
        "(no go on the machine; same numbers)"
    )
    if not memory:
        return
    sizes = [blocks // 5, blocks, blocks * 2]
    peaks = []
    helper_rss = []
    for n in sizes:
        path = prof if n == blocks else tmp / f"p{n}.out"
        if n != blocks:
            gen_profile(path, files, n)
        peaks.append(peak_mb(ours, path, matcher, diff))
        helper_rss.append(helper_peak_mb(path))
        if path != prof:
            path.unlink()
    shown = ", ".join(f"{m:.1f} MB at {n:,}" for m, n in zip(peaks, sizes, strict=True))
    print(f"  peak memory (tracemalloc, read + join): {shown} blocks")
    if all(r is not None for r in helper_rss):
        shown = ", ".join(f"{r:.1f} MB at {n:,}" for r, n in zip(helper_rss, sizes, strict=True))
        print(f"  compiled helper's peak RSS (its own process): {shown} blocks")
    print(f"    {peaks[-1] * 1e6 / files:,.0f} B/file; growth from {sizes[0]:,} to {sizes[-1]:,} blocks: "
          f"{(peaks[-1] - peaks[0]) * 1e6 / (sizes[-1] - sizes[0]):.2f} B/block "
          f"(a per-line-set parser measured 250 MB at 1M)")  # fmt: skip


def huge_child(path: str, files: int, diff_files: int) -> int:
    """Run in a child process: read + join the huge profile, print wall time and peak RSS as JSON."""
    names = file_names(files)
    root = Path(path).parent
    matcher = go_matcher(root, names)
    diff = gen_diff(names, diff_files)
    t = time.perf_counter()
    stmts, measured, uncovered = ours(Path(path), matcher, diff)
    wall = time.perf_counter() - t
    rss = peak_rss_bytes()
    print(json.dumps({"wall": wall, "rss": rss, "stmts": stmts, "measured": measured, "uncovered": uncovered}))
    return 0


def bench_huge() -> None:
    files, blocks, diff_files = 5000, 16_000_000, 2000
    OUT.mkdir(exist_ok=True)
    path = OUT / "huge.out"
    try:
        t = time.perf_counter()
        gen_profile(path, files, blocks)
        gen_s = time.perf_counter() - t
        size = path.stat().st_size
        proc = subprocess.run(
            [sys.executable, __file__, "--huge-child", str(path), str(files), str(diff_files)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        r = json.loads(proc.stdout)
        base = subprocess.run(
            [sys.executable, "-c", "import itest_mcp.tools.coverage, peak_memory; print(peak_memory.peak_rss_bytes())"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        print(f"huge: {blocks:,} blocks / {files:,} files ({size / 1e9:.2f} GB, generated in {gen_s:.0f} s), "
              f"diff of {diff_files:,} files")  # fmt: skip
        print(f"  read + join           {r['wall']:6.1f} s   ({size / 1e6 / r['wall']:.0f} MB/s), "
              f"changed lines measured {r['measured']:,}")  # fmt: skip
        print(f"  peak RSS of the child {r['rss'] / 1e6:6.1f} MB   (a process that only imports the modules: "
              f"{int(base.stdout) / 1e6:.1f} MB)")  # fmt: skip
    finally:
        path.unlink(missing_ok=True)


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
    files, _i, unmatched, _n = load_coverage([xml], PathMatcher(root), changed=changes.files)
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
    if len(sys.argv) == 5 and sys.argv[1] == "--huge-child":
        return huge_child(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=float, default=1.0, help="fraction of the issue's sizes (default 1.0)")
    ap.add_argument("--skip-cobertura", action="store_true")
    ap.add_argument("--skip-memory", action="store_true", help="skip the 200k / 1M / 2M block memory runs")
    ap.add_argument("--huge", action="store_true", help="also read a ~1 GB profile (written to bench/out/, deleted)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-cov-") as d:
        tmp = Path(d)
        bench_go(tmp, args.scale, not args.skip_memory)
        if not args.skip_cobertura:
            bench_cobertura(tmp, args.scale)
    if args.huge:
        bench_huge()
    return 0


if __name__ == "__main__":
    sys.exit(main())
