"""build_report over 10 runs × 2,000 tests (2 % failing with output excerpts, some flaky, one slow).

Bars (issue 8): build_report under 1 s; the HTML file under 2 MB.

    python bench/bench_report.py [--runs 10] [--tests 2000]
"""

from __future__ import annotations

import argparse
import random
import subprocess
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from itest_mcp.tools import history
from itest_mcp.tools.models import (
    Artifacts,
    Attempt,
    Failure,
    Location,
    Outcome,
    PhaseRun,
    RunStatus,
    TestReport,
    TestResult,
    TestTiming,
    Totals,
)
from itest_mcp.tools.repo import open_project
from itest_mcp.tools.report import build_report
from itest_mcp.tools.report_html import render_html
from itest_mcp.tools.report_markdown import render_markdown

BASE = datetime(2025, 3, 1, tzinfo=UTC)
EXCERPT = "\n".join(f"    client_test.go:{100 + i}: step {i}: got 503, want 200" for i in range(40))


def make_run(index: int, tests: int, rng: random.Random) -> PhaseRun:
    phase = ("integration", "network")[index % 2]
    run_id = (BASE + timedelta(minutes=index)).strftime("%Y%m%dT%H%M%SZ") + f"-{phase}-{index:04x}"
    results: list[TestResult] = []
    failures: list[Failure] = []
    totals = Totals()
    for t in range(tests):
        name, cls = f"Test{t:05d}", f"example.com/svc/pkg{t % 40}"
        duration = 0.01 + (t % 97) / 1000 + (2.5 if t == 7 and index == 9 else 0.0)
        roll = rng.random()
        if roll < 0.02:
            outcome, attempts = (
                Outcome.FAILED,
                [Attempt(outcome=Outcome.FAILED, duration_s=duration, message="got 503")],
            )
            failures.append(
                Failure(
                    test=name,
                    classname=cls,
                    message=f"client_test.go:{t}: got 503, want 200",
                    location=Location(file=f"pkg{t % 40}/client_test.go", line=t),
                    excerpt=EXCERPT,
                    kind="assertion",
                )
            )
        elif roll < 0.025:
            outcome = Outcome.FLAKY
            attempts = [Attempt(outcome=Outcome.FAILED, duration_s=duration), Attempt(outcome=Outcome.PASSED)]
        else:
            outcome, attempts = Outcome.PASSED, [Attempt(outcome=Outcome.PASSED, duration_s=duration)]
        results.append(TestResult(name=name, classname=cls, outcome=outcome, duration_s=duration, attempts=attempts))
        totals.tests += 1
        totals.attempts += len(attempts)
        field = {"passed": "passed", "failed": "failed", "flaky": "flaky"}[outcome.value]
        setattr(totals, field, getattr(totals, field) + 1)
    slowest = sorted(results, key=lambda r: r.duration_s, reverse=True)[:10]
    started = BASE + timedelta(minutes=index)
    return PhaseRun(
        run_id=run_id,
        phase=phase,
        argv=["go", "test", "-json", "./..."],
        commit="c" * 40,
        status=RunStatus.FAILED if failures else RunStatus.PASSED,
        exit_code=1,
        started_at=started,
        ended_at=started + timedelta(seconds=60),
        duration_s=60.0,
        report=TestReport(
            totals=totals,
            failures=failures,
            slowest=[TestTiming(name=r.name, classname=r.classname, duration_s=r.duration_s) for r in slowest],
            tests=results,
        ),
        artifacts=Artifacts(run_dir=f".itest/runs/{run_id}"),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--tests", type=int, default=2000)
    args = parser.parse_args()
    rng = random.Random(3)
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "repo"
        repo.mkdir()
        subprocess.run(["git", "init", "-q", str(repo)], check=True)
        project = open_project(repo)
        runs = [make_run(i, args.tests, rng) for i in range(args.runs)]
        for run in runs:
            history.write_run_folder(project, run)
        ids = [r.run_id for r in runs]
        # Cold: history has never seen these runs, so the report imports all of them first.
        start = time.perf_counter()
        build_report(project, ids)
        cold = time.perf_counter() - start
        timings = []
        for _ in range(3):
            start = time.perf_counter()
            report = build_report(project, ids)
            timings.append(time.perf_counter() - start)
        warm = min(timings)
        start = time.perf_counter()
        html = render_html(report)
        md = render_markdown(report)
        t_render = time.perf_counter() - start
        html_bytes = len(html.encode("utf-8"))
    print(f"report: {args.runs} runs × {args.tests} tests; {len(report.findings.failures)} failure findings")
    print(f"  build_report (runs recorded)       {warm * 1000:8.1f} ms   bar 1000 ms   ratio {warm / 1.0:.2f}")
    print(f"  build_report (first, imports runs) {cold * 1000:8.1f} ms   bar 1000 ms   ratio {cold / 1.0:.2f}")
    print(f"  render html + markdown             {t_render * 1000:8.1f} ms")
    print(
        f"  html size                          {html_bytes / 1e6:8.3f} MB   bar 2 MB      ratio {html_bytes / 2e6:.2f}"
    )
    print(f"  markdown size                      {len(md) / 1e3:8.1f} kB")
    return 0 if warm < 1.0 and html_bytes < 2e6 else 1


if __name__ == "__main__":
    raise SystemExit(main())
