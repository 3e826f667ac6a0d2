"""Wall-clock overhead of run_phase vs the same `go test -json` argv run directly (median of 5 each).

Cases: the demo's passing phase `network-edge-cases`, and a generated module with
2,000 tests. Also prints the first progress notification's delay after the first
test finished (from the event's own timestamp). Run: python bench/bench_run_overhead.py [--runs 5] [--timeline]
With --timeline, one more run per case prints its critical path (ms since the tool was entered).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import tempfile
import time
from datetime import datetime
from pathlib import Path

import anyio

from itest_mcp.tools import history
from itest_mcp.tools.models import PhaseRun
from itest_mcp.tools.phases import build_argv, load_phases
from itest_mcp.tools.repo import Project, open_project
from itest_mcp.tools.runner import RunOptions, run_phase

DEMO = Path(__file__).resolve().parent.parent / "examples" / "demo"


def git_init(path: Path) -> None:
    env = {"GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@e", "GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@e"}
    import os

    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "x"]):
        subprocess.run(["git", *args], cwd=path, env={**os.environ, **env}, check=True, capture_output=True)


def generated_module(root: Path, tests: int = 2000) -> Path:
    mod = root / "gen"
    mod.mkdir()
    (mod / "go.mod").write_text("module example.com/gen\n\ngo 1.22\n")
    body = ["package gen\n", 'import "testing"\n']
    body += [f'func TestGen{i:04d}(t *testing.T) {{ t.Log("ok") }}\n' for i in range(tests)]
    (mod / "gen_test.go").write_text("\n".join(body))
    (mod / "itest.toml").write_text('[phases.gen]\nrunner = "go"\nrace = false\n')
    git_init(mod)
    return mod


def direct(project_root: Path, argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, cwd=project_root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - start


def print_timeline(project: Project, phase_name: str) -> None:
    """One run with a timeline: each step's time since entry and since the step before."""
    marks: list[tuple[str, float]] = []

    async def one() -> None:
        await run_phase(project, phase_name, RunOptions(), timeline=marks)

    anyio.run(one)
    start = marks[0][1]
    previous = start
    print(f"  timeline of one run of {phase_name} (ms since entry, +ms since previous step):")
    for step, at in sorted(marks, key=lambda m: m[1]):
        print(f"    {1000 * (at - start):8.1f}  {1000 * (at - previous):+7.1f}  {step}")
        previous = at


def measure(project_root: Path, phase_name: str, runs: int, timeline: bool = False) -> None:
    project = open_project(project_root)
    phase = load_phases(project).get(phase_name)
    argv = build_argv(phase)
    direct(project_root, argv)  # warm the build cache
    first_delays: list[float] = []

    async def one() -> float:
        sent: list[float] = []

        async def progress(done: int, total: int | None, message: str) -> None:
            # Every notification's arrival time; the first one after the first finished test is the figure.
            sent.append(time.time())

        start = time.perf_counter()
        result = await run_phase(project, phase_name, RunOptions(), progress=progress)
        elapsed = time.perf_counter() - start
        log = project.root / result.artifacts.log
        for line in log.read_bytes().splitlines():
            if b'"Action":"pass"' in line or b'"Action":"fail"' in line or b'"Action":"skip"' in line:
                event = json.loads(line)
                if not event.get("Test"):
                    continue
                finished = datetime.fromisoformat(event["Time"].replace("Z", "+00:00")).timestamp()
                after = [t for t in sent if t >= finished]
                if after:
                    first_delays.append(after[0] - finished)
                break
        return elapsed

    ours: list[float] = []
    plain: list[float] = []
    history_s.clear()
    for _ in range(runs):
        plain.append(direct(project_root, argv))
        ours.append(anyio.run(one))
    m_ours, m_plain = statistics.median(ours), statistics.median(plain)
    print(
        f"{phase_name:<20} direct {m_plain:.3f} s  run_phase {m_ours:.3f} s  ratio {m_ours / m_plain:.3f} "
        f"(overhead {100 * (m_ours / m_plain - 1):+.1f}%, bar <= +5%)"
    )
    if history_s:
        m_hist = statistics.median(history_s)
        print(
            f"{'':<20} of which the history.db write: median {1000 * m_hist:.0f} ms "
            f"(ratio without it {(m_ours - m_hist) / m_plain:.3f})"
        )
    if first_delays:
        print(
            f"{'':<20} first progress after first test finished: median {statistics.median(first_delays):.3f} s "
            f"(bar <= 1 s)"
        )
    if timeline:
        print_timeline(project, phase_name)


history_s: list[float] = []


def _time_history_writes() -> None:
    """Time each history write (the runner calls it at the end of every run); behaviour is unchanged."""
    real = history.try_record_run

    def timed(project: Project, run: PhaseRun) -> str | None:
        start = time.perf_counter()
        try:
            return real(project, run)
        finally:
            history_s.append(time.perf_counter() - start)

    history.try_record_run = timed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--timeline", action="store_true", help="print one run's critical path per case")
    args = parser.parse_args()
    _time_history_writes()
    with tempfile.TemporaryDirectory() as tmp:
        demo = Path(tmp) / "demo"
        shutil.copytree(DEMO, demo, ignore=shutil.ignore_patterns(".itest", "__pycache__"))
        git_init(demo)
        measure(demo, "network-edge-cases", args.runs, args.timeline)
        measure(generated_module(Path(tmp)), "gen", args.runs, args.timeline)


if __name__ == "__main__":
    main()
