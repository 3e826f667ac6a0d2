"""Wall-clock overhead of run_phase vs the same `go test -json` argv run directly (median of 5 each).

Cases: the demo's passing phase `network-edge-cases`, and a generated module with
2,000 tests. Also prints the first progress notification's delay after the first
test finished (from the event's own timestamp). Run: python bench/bench_run_overhead.py [--runs 5] [--timeline]
With --timeline, one more run per case prints its critical path (ms since the tool was entered).
With --ab REF, each round also runs run_phase with REF's Go parser (tools/gotest.py from `git show`), old and
new interleaved in alternating order, so a parser change is compared on the same noisy machine in one run.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import types
from datetime import datetime
from pathlib import Path

import anyio

from itest_mcp.tools import gotest, history, runner
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


def load_parser(ref: str) -> type[gotest.GoTestParser]:
    """GoTestParser as tools/gotest.py was at git `ref`, loaded beside the current one."""
    source = subprocess.run(
        ["git", "show", f"{ref}:tools/gotest.py"], cwd=DEMO.parent.parent, capture_output=True, text=True, check=True
    ).stdout
    module = types.ModuleType("itest_mcp.tools._gotest_ab")
    module.__package__ = "itest_mcp.tools"
    sys.modules[module.__name__] = module  # dataclasses look their module up while the class is built
    exec(compile(source, f"{ref}:tools/gotest.py", "exec"), module.__dict__)  # noqa: S102 - our own file at a ref
    parser: type[gotest.GoTestParser] = module.GoTestParser
    return parser


ab_parser: type[gotest.GoTestParser] | None = None


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
        assert result.artifacts.log is not None
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
    baseline: list[float] = []
    history_s.clear()
    for round_no in range(runs):
        plain.append(direct(project_root, argv))
        if ab_parser is None:
            ours.append(anyio.run(one))
            continue
        # Old and new parser in alternating order; history_s then holds both (its median is of both).
        order = [(ours, gotest.GoTestParser), (baseline, ab_parser)]
        for into, parser_class in order if round_no % 2 == 0 else reversed(order):
            setattr(runner, "GoTestParser", parser_class)  # noqa: B010 - a swap for this run only
            try:
                into.append(anyio.run(one))
            finally:
                setattr(runner, "GoTestParser", gotest.GoTestParser)  # noqa: B010
    m_ours, m_plain = statistics.median(ours), statistics.median(plain)
    print(
        f"{phase_name:<20} direct {m_plain:.3f} s  run_phase {m_ours:.3f} s  ratio {m_ours / m_plain:.3f} "
        f"(overhead {100 * (m_ours / m_plain - 1):+.1f}%, bar <= +5%)"
    )
    if baseline:
        m_base = statistics.median(baseline)
        print(f"{'':<20} with the --ab parser: run_phase {m_base:.3f} s  ratio {m_base / m_plain:.3f}")
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
    parser.add_argument("--ab", metavar="REF", help="also time run_phase with the Go parser of git REF, interleaved")
    args = parser.parse_args()
    global ab_parser
    if args.ab:
        ab_parser = load_parser(args.ab)
    _time_history_writes()
    with tempfile.TemporaryDirectory() as tmp:
        demo = Path(tmp) / "demo"
        shutil.copytree(DEMO, demo, ignore=shutil.ignore_patterns(".itest", "__pycache__"))
        git_init(demo)
        measure(demo, "network-edge-cases", args.runs, args.timeline)
        measure(generated_module(Path(tmp)), "gen", args.runs, args.timeline)


if __name__ == "__main__":
    main()
