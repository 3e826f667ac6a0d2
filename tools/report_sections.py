"""The report's sections built from the runs: Test Execution Summary, Critical Findings, Recommendations.

Coverage Analysis and the other tools' results they draw on are read in report_tool_results.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from typing import Any

from .errors import ItestError
from .flaky import SLOW_MIN_DELTA_S, SLOW_RATIO, FlakyReport, TestStats
from .models import CountsSource, Outcome, PhaseRun, RunStatus, TestResult, TestTiming
from .phases import Phase, Runner
from .repo import Project
from .report_causes import Cause, classify
from .report_model import (
    CoverageAnalysis,
    CriticalFindings,
    ExecutionSummary,
    FailureFinding,
    Finding,
    PhaseResult,
    Recommendation,
    SlowTestEntry,
)
from .report_text import clip, first_line
from .report_tool_results import (
    github_api_changed,
    github_problems,
    github_summary,
    recommended_phases,
    stale_assessment,
)
from .results_store import ERROR_KEY

MAX_FAILURES = 100
SLOW_TEST_MIN_S = 1.0
SLOW_TEST_SHARE = 0.25
"""A test is a performance finding at ≥ SLOW_TEST_MIN_S and ≥ SLOW_TEST_SHARE of its phase's wall time: below
either, speeding it up would not shorten the phase noticeably (history regressions are reported regardless)."""
SUBTEST_EXPLAINS = 0.5
MAX_SLOW_FINDINGS = 5
MAX_SLOWDOWNS = 10


def execution_summary(runs: list[PhaseRun]) -> ExecutionSummary:
    """Test Execution Summary: every run, the totals, the pass rate and the slowest tests (one entry per test)."""
    summary = ExecutionSummary()
    totals = summary.totals
    for run in runs:
        t = run.report.totals
        summary.runs.append(
            PhaseResult(
                run_id=run.run_id,
                phase=run.phase,
                status=run.status,
                started_at=run.started_at,
                duration_s=run.duration_s,
                commit=run.commit,
                dirty=run.dirty,
                totals=t,
                source=run.report.source.value,
                exit_code=run.exit_code,
            )
        )
        summary.total_duration_s += run.duration_s
        for name in ("tests", "passed", "failed", "errors", "skipped", "flaky", "attempts"):
            setattr(totals, name, getattr(totals, name) + getattr(t, name))
    summary.total_duration_s = round(summary.total_duration_s, 3)
    ran = totals.tests - totals.skipped
    summary.pass_rate = round((totals.passed + totals.flaky) / ran, 4) if ran > 0 else None
    slow: list[SlowTestEntry] = []
    for run in runs:
        timings = run.report.slowest
        for timing in timings:
            if _has_listed_parent(timing, timings):
                continue  # shown under its parent: the parent's time includes it
            share = timing.duration_s / run.duration_s if run.duration_s > 0 else None
            explaining = _explaining_subtest(timing, timings)
            subtest = None
            if explaining is not timing:
                part = explaining.duration_s / timing.duration_s if timing.duration_s > 0 else 1.0
                subtest = f"{explaining.name} took {explaining.duration_s:.2f} s of it ({part:.0%})"
            slow.append(
                SlowTestEntry(
                    name=timing.name,
                    classname=timing.classname,
                    phase=run.phase,
                    run_id=run.run_id,
                    duration_s=timing.duration_s,
                    share_of_phase=round(min(share, 1.0), 4) if share is not None else None,
                    subtest=subtest,
                )
            )
    # One entry per test across phases (a test of `slow` runs again in `all`): its slowest run, and of
    # equal ones the run where it weighed most.
    best: dict[tuple[str, str], SlowTestEntry] = {}
    for entry in slow:
        key = (entry.classname, entry.name)
        rank = (round(entry.duration_s, 1), entry.share_of_phase or 0.0)
        if key not in best or rank > (round(best[key].duration_s, 1), best[key].share_of_phase or 0.0):
            best[key] = entry
    summary.slowest = sorted(best.values(), key=lambda s: s.duration_s, reverse=True)[:10]
    return summary


def _history_note(stats: TestStats | None) -> str | None:
    if stats is None:
        return None
    rate = f"failure rate {stats.failure_rate:.0%} over {stats.runs} run(s)"
    return f"{stats.status.value}: {stats.evidence}; {rate}" if stats.evidence else rate


def failure_findings(runs: list[PhaseRun], history: FlakyReport | None) -> CriticalFindings:
    """Critical Findings' failures (failed tests, races, build errors, panics), one per test, with cause classes."""
    findings = CriticalFindings()
    by_key: dict[str, TestStats] = {}
    if history is not None:
        for stats in (*history.broken, *history.flaky, *history.failing):
            by_key[stats.key] = stats
            by_key.setdefault(stats.name, stats)
    items: list[FailureFinding] = []
    for run in runs:
        races_by_test = {race.test: race for race in run.report.races if race.test}
        seen_tests: set[str] = set()
        for failure in run.report.failures:
            cause, evidence = classify(failure)
            race = races_by_test.get(failure.test)
            location = failure.location
            if race is not None:
                cause = Cause.DATA_RACE
                where = ", ".join(str(loc) for loc in race.locations[:3])
                evidence = "a WARNING: DATA RACE block ran during this test" + (f" (at {where})" if where else "")
                location = location or (race.locations[0] if race.locations else None)
            if cause is Cause.UNCLASSIFIED and run.status is RunStatus.TIMEOUT:
                cause, evidence = Cause.TIMEOUT, f"the phase {timeout_phrase(run)}"
            key = f"{failure.classname}::{failure.test}" if failure.classname else failure.test
            seen_tests.add(failure.test)
            items.append(
                FailureFinding(
                    test=failure.test,
                    classname=failure.classname,
                    phase=run.phase,
                    run_id=run.run_id,
                    outcome=failure.outcome,
                    cause=cause,
                    cause_evidence=evidence,
                    location=str(location) if location else None,
                    message=clip(failure.message.strip(), 500),
                    excerpt=_clip_tail(failure.excerpt, 1200),
                    attempts=failure.attempts,
                    history=_history_note(by_key.get(key) or by_key.get(failure.test)),
                )
            )
        for race in run.report.races:
            if race.test and race.test in seen_tests:
                continue
            items.append(
                FailureFinding(
                    test=race.test or "(no test attributed)",
                    classname=race.package,
                    phase=run.phase,
                    run_id=run.run_id,
                    cause=Cause.DATA_RACE,
                    cause_evidence="a WARNING: DATA RACE block in the output",
                    location=str(race.locations[0]) if race.locations else None,
                    message="WARNING: DATA RACE",
                    excerpt=_clip_tail(race.excerpt, 1200),
                )
            )
        for build in run.report.build_errors:
            items.append(
                FailureFinding(
                    test=f"{build.package or 'package'} (build)",
                    classname=build.package,
                    phase=run.phase,
                    run_id=run.run_id,
                    outcome=Outcome.ERROR,
                    cause=Cause.BUILD,
                    cause_evidence="the compiler rejected the package",
                    location=str(build.location) if build.location else None,
                    message=clip(build.message.strip(), 500),
                )
            )
        for panic in run.report.panics:
            if panic.test and panic.test in seen_tests:
                continue
            items.append(
                FailureFinding(
                    test=panic.test or f"{panic.package or 'test binary'} (panic)",
                    classname=panic.package,
                    phase=run.phase,
                    run_id=run.run_id,
                    outcome=Outcome.ERROR,
                    cause=Cause.PANIC,
                    cause_evidence=f"panic: {clip(panic.message, 160)}",
                    location=str(panic.location) if panic.location else None,
                    message=clip(panic.message, 500),
                    excerpt=_clip_tail(panic.excerpt, 1200),
                )
            )
    items = _merge_failures(items, {run.run_id: run for run in runs})
    findings.causes = dict(Counter(item.cause.value for item in items).most_common())
    findings.failures = items[:MAX_FAILURES]
    findings.failures_omitted = max(0, len(items) - MAX_FAILURES)
    return findings


def _merge_failures(items: list[FailureFinding], runs: dict[str, PhaseRun]) -> list[FailureFinding]:
    """One finding per test (package/classname + name), however many selected runs and phases it failed in.

    A test failing in `api-client` and again in `all` is one problem to fix. The finding keeps the richest
    evidence: a race or panic over a plain failure, counts parsed from go test -json or JUnit over a command's
    text output (which knows nothing of races), a failure with a file:line over one without; then the most
    specific run (the fewest tests: its output has the least noise), the latest on a tie. It lists every phase
    and run it was seen in.
    """
    groups: dict[tuple[str, str], list[FailureFinding]] = {}
    for item in items:
        groups.setdefault((item.classname, item.test), []).append(item)
    merged: list[FailureFinding] = []
    for group in groups.values():
        primary = min(group, key=lambda i: _evidence_rank(i, runs.get(i.run_id)))
        seen = list(dict.fromkeys(i.run_id for i in group))
        primary.seen_in = seen
        primary.phases = list(dict.fromkeys(i.phase for i in group))
        primary.also_failed_in = [r for r in seen if r != primary.run_id]
        merged.append(primary)
    return merged


STRONG_CAUSES = frozenset({Cause.DATA_RACE, Cause.PANIC})
STRUCTURED_SOURCES = frozenset({CountsSource.GO_JSON, CountsSource.JUNIT, CountsSource.PYTEST})


def _evidence_rank(item: FailureFinding, run: PhaseRun | None) -> tuple[bool, bool, bool, int, tuple[int, ...]]:
    # min() over this picks the richest evidence first (False sorts before True).
    source = run.report.source if run is not None else CountsSource.NONE
    return (
        item.cause not in STRONG_CAUSES,
        source not in STRUCTURED_SOURCES,
        item.location is None,
        run.report.totals.tests if run is not None else 0,
        _reverse_key(item.run_id),
    )


def _reverse_key(text: str) -> tuple[int, ...]:
    # min() over (size, this) picks the latest run id among runs of the same size.
    return tuple(-ord(c) for c in text)


def seen_in_text(item: FailureFinding) -> str:
    """Where a failure was seen: "phase race, run R" or "phases api-client, all (runs A, B)"."""
    phases = item.phases or [item.phase]
    runs = item.seen_in or [item.run_id]
    label = "phases" if len(phases) > 1 else "phase"
    if len(runs) == 1:
        return f"{label} {', '.join(phases)}, run {runs[0]}"
    return f"seen in {label} {', '.join(phases)} (runs {', '.join(runs)})"


def _clip_tail(text: str, limit: int) -> str:
    text = text.strip("\n")
    return text if len(text) <= limit else "…" + text[-(limit - 1) :]


def performance_rule() -> str:
    """The rule the Performance findings follow, as the report states it."""
    return (
        f"a test is listed when it took at least {SLOW_TEST_MIN_S:g} s and at least {SLOW_TEST_SHARE:.0%} of its "
        f"phase's wall time, or when history shows it slowed down (over {SLOW_RATIO:g}× its rolling median and "
        f"{SLOW_MIN_DELTA_S:g} s slower); a parent test is replaced by the subtest that takes at least "
        f"{SUBTEST_EXPLAINS:.0%} of its time; each test is listed once"
    )


def _is_slow(duration_s: float, share: float) -> bool:
    return duration_s >= SLOW_TEST_MIN_S and share >= SLOW_TEST_SHARE


def _explaining_subtest(timing: TestTiming, timings: list[TestTiming]) -> TestTiming:
    """The deepest subtest of `timing` that accounts for most of its time (itself when none does)."""
    best = timing
    for other in timings:
        if (
            other.classname == timing.classname
            and other.name.startswith(timing.name + "/")
            and other.duration_s >= SUBTEST_EXPLAINS * timing.duration_s
            and (other.name.count("/"), other.duration_s) > (best.name.count("/"), best.duration_s)
        ):
            best = other
    return best


def _has_listed_parent(timing: TestTiming, timings: list[TestTiming]) -> bool:
    return any(other.classname == timing.classname and timing.name.startswith(other.name + "/") for other in timings)


def performance_findings(runs: list[PhaseRun], history: FlakyReport | None) -> list[Finding]:
    """Critical Findings' performance issues under `performance_rule`, then history's slowdowns."""
    # Over the selected runs' slowest tests: a test over the threshold in several phases (`slow` and `all`)
    # is one finding (its largest share of a phase), and a parent whose time one subtest explains
    # (TestNetworkEdgeCases 1.14 s, its rate_limit_429_retry_after 1.00 s) is reported as that subtest.
    best: dict[tuple[str, str], tuple[float, Finding]] = {}
    also: dict[tuple[str, str], list[str]] = {}
    for run in runs:
        timings = run.report.slowest
        for timing in timings:
            share = timing.duration_s / run.duration_s if run.duration_s > 0 else 0.0
            if not _is_slow(timing.duration_s, share):
                continue
            test = _explaining_subtest(timing, timings)
            test_share = min(test.duration_s / run.duration_s, 1.0)
            key = (test.classname, test.name)
            title = (
                f"{test.name} took {test.duration_s:.2f} s in phase {run.phase}, "
                f"{test_share:.0%} of the phase's {run.duration_s:.2f} s"
            )
            detail = ""
            if test is not timing:
                part = test.duration_s / timing.duration_s
                detail = f"it accounts for {part:.0%} of {timing.name}'s {timing.duration_s:.2f} s"
            finding = Finding(
                category="performance",
                title=title,
                detail=detail,
                run_id=run.run_id,
                source="run result (slowest tests)",
                test=test.name,
                phase=run.phase,
            )
            phases = also.setdefault(key, [])
            if run.phase not in phases:
                phases.append(run.phase)
            if key not in best or test_share > best[key][0]:
                best[key] = (test_share, finding)
    found: list[Finding] = []
    for key, (_share, finding) in sorted(best.items(), key=lambda kv: -kv[1][0]):
        others = [p for p in also[key] if p != finding.phase]
        if others:
            extra = f"also over the threshold in phase(s) {', '.join(others)}"
            finding.detail = f"{finding.detail}; {extra}" if finding.detail else extra
        found.append(finding)
    del found[MAX_SLOW_FINDINGS:]
    if history is not None:
        reported: set[str] = set()
        for slow in history.slow:
            if slow.key in reported or len(reported) >= MAX_SLOWDOWNS:
                continue
            reported.add(slow.key)
            found.append(
                Finding(
                    category="performance",
                    title=(
                        f"{slow.name} slowed down: {slow.duration_s:.2f} s in {slow.run_id}, "
                        f"{slow.ratio:.1f}× its median {slow.median_s:.2f} s over {slow.samples} earlier runs"
                    ),
                    detail=f"phase {slow.phase}; {slow.slower_by_s:.2f} s slower",
                    run_id=slow.run_id,
                    source="history (rolling median)",
                    test=slow.name,
                    phase=slow.phase,
                )
            )
    return found


# Run notes that restate a failure (its own finding under Failures) or a status the environment list
# already reports; everything else a run notes (a missing tool, a log limit, a JUnit glob) stays.
NOT_ENVIRONMENT_NOTES = re.compile(
    r"^(?:data race detected in |build failed in |the phase exited 0 but ran no tests|"
    r"the run (?:timed out|was cancelled) after )"
)


def is_environment_note(note: str) -> bool:
    """Whether a run note belongs under Environment and configuration (not a test failure restated)."""
    return not NOT_ENVIRONMENT_NOTES.match(note)


def phase_covers(outer: Phase, inner: Phase) -> bool:
    """Whether running `outer` runs every test of `inner` the way `inner` would (Go phases, same build)."""
    if outer.name == inner.name or outer.runner is not Runner.GO or inner.runner is not Runner.GO:
        return False
    if not outer.available or not inner.test_files or not outer.test_files:
        return False
    return (
        set(inner.test_files) <= set(outer.test_files)
        and set(inner.packages) <= set(outer.packages)
        and set(inner.tags) == set(outer.tags)
        and (outer.race or not inner.race)
        and outer.run is None
        and outer.skip in (None, inner.skip)
        and outer.count >= inner.count
        and outer.args == inner.args
        and outer.env == inner.env
    )


def _covering_run(defined: dict[str, Phase], name: str, runs: list[PhaseRun]) -> PhaseRun | None:
    inner = defined.get(name)
    if inner is None:
        return None
    for run in reversed(runs):
        outer = defined.get(run.phase)
        if outer is not None and phase_covers(outer, inner) and _ran_whole(run, inner):
            return run
    return None


def _ran_whole(run: PhaseRun, inner: Phase) -> bool:
    # A run narrowed to some tests (-run) or with race turned off did not run what `inner` would.
    narrowed = any(arg == "-run" or arg.startswith("-run=") for arg in run.argv)
    return not narrowed and (not inner.race or "-race" in run.argv)


def timeout_phrase(run: PhaseRun) -> str:
    """'hit its timeout of 1 s (stopped after 2.0 s)': the limit the run was given, the wall time beside it.

    The wall time alone misstated the limit (it includes the kill's grace period).
    """
    if run.timeout_s is not None:
        return f"hit its timeout of {run.timeout_s:g} s (stopped after {run.duration_s:.1f} s)"
    return f"hit its timeout (stopped after {run.duration_s:.1f} s)"


def exit_code_text(run: PhaseRun) -> str:
    """' (exit code N)' when the code says something: not for 0 (go test exits 0 when no test matched) or none."""
    return f" (exit code {run.exit_code})" if run.exit_code not in (None, 0) else ""


def _first_note(run: PhaseRun) -> str:
    return f": {clip(run.notes[0], 200)}" if run.notes else ""


def environment_findings(
    project: Project,
    runs: list[PhaseRun],
    latest: dict[str, dict[str, Any] | None],
    problems: list[Finding],
    summary: ExecutionSummary,
) -> list[Finding]:
    """Critical Findings' environment problems; notes the recommended phases a wider run covered on `summary`."""
    found = list(problems)
    for run in runs:
        if run.status in (RunStatus.TIMEOUT, RunStatus.ERROR, RunStatus.CANCELLED):
            verb = {
                RunStatus.TIMEOUT: timeout_phrase(run),
                RunStatus.ERROR: f"ended in an error{exit_code_text(run)}{_first_note(run)}",
                RunStatus.CANCELLED: f"was cancelled after {run.duration_s:.1f} s; its results are partial",
            }[run.status]
            found.append(
                Finding(category="environment", title=f"phase {run.phase} {verb}", run_id=run.run_id, source="run")
            )
        if run.report.totals.tests == 0 and run.status is RunStatus.PASSED:
            found.append(
                Finding(
                    category="environment",
                    title=f"phase {run.phase} ran no tests (exit code {run.exit_code})",
                    detail="check its test selection (build tags, -run pattern, markers)",
                    run_id=run.run_id,
                    source="run",
                )
            )
        for note in run.notes:
            if not is_environment_note(note):
                continue
            found.append(
                Finding(
                    category="environment", title=f"phase {run.phase}: {note}", run_id=run.run_id, source="run notes"
                )
            )
    ran_phases = {run.phase for run in runs}
    defined: dict[str, Phase] = {}
    try:
        from .phases import load_phases

        for phase in load_phases(project).phases:
            defined[phase.name] = phase
            if not phase.available:
                found.append(
                    Finding(
                        category="environment",
                        title=f"phase {phase.name} cannot run here: {phase.note or 'its program is missing'}",
                        source="list_phases",
                    )
                )
    except ItestError as exc:
        found.append(Finding(category="environment", title=f"the phase configuration cannot be read: {exc}"))
    assess = latest.get("assess")
    stale = stale_assessment(assess, runs)
    if stale:
        # An assessment of another branch or commit recommends phases for changes these runs do not have.
        found.append(Finding(category="environment", title=stale, source="assess_changes (another commit)"))
        assess = None
    recommended = recommended_phases(assess)
    covered: dict[str, list[str]] = {}
    for name in recommended:
        if name in ran_phases:
            continue
        cover = _covering_run(defined, name, runs)
        if cover is not None:
            covered.setdefault(cover.run_id, []).append(name)
            continue
        if name not in ran_phases:
            found.append(
                Finding(
                    category="environment",
                    title=f"phase {name} was recommended by assess_changes but is not among the reported runs",
                    source="assess_changes",
                    phase=name,
                )
            )
    by_id = {run.run_id: run for run in runs}
    for run_id, names in covered.items():
        label = "phases" if len(names) > 1 else "phase"
        summary.covered.append(
            f"recommended {label} {', '.join(names)}: every test of theirs ran in phase {by_id[run_id].phase} "
            f"(run {run_id}) with the same tags and flags, so they were not run again on their own"
        )
    github = latest.get("github")
    if github is not None and ERROR_KEY in github:
        found.append(
            Finding(
                category="environment",
                title=f"GitHub API validation failed: {clip(str(github[ERROR_KEY]), 300)}",
                source="validate_github_api",
            )
        )
    elif github is not None:
        summary.github = github_summary(github)
        for problem in github_problems(github):
            found.append(Finding(category="environment", title=problem, source="validate_github_api"))
    if github_api_changed(assess) and github is None:
        token = (
            "a token is set"
            if (os.environ.get("GITHUB_TOKEN") or os.environ.get("GH_TOKEN"))
            else ("and neither GITHUB_TOKEN nor GH_TOKEN is set")
        )
        found.append(
            Finding(
                category="environment",
                title=f"GitHub API code changed but validate_github_api has not run ({token})",
                source="assess_changes",
            )
        )
    return found


def recommendations(
    findings: CriticalFindings,
    history: FlakyReport | None,
    flaky_now: list[tuple[str, TestResult]],
    coverage: CoverageAnalysis,
    runs: list[PhaseRun],
) -> list[Recommendation]:
    """Recommendations: fixes, reliability, performance and new tests, each with the data that calls for it."""
    recs: list[Recommendation] = []
    seen: set[tuple[str, str]] = set()
    # A test history calls flaky failed and then passed (on a rerun, or on the same commit): its failure is a
    # Reliability item, not an Immediate fix of a check that is wrong.
    flaky_history = {key for stats in (history.flaky if history else []) for key in (stats.key, stats.name)}
    flaky_failures: dict[str, FailureFinding] = {}
    for item in findings.failures:
        if (item.classname, item.test) in seen:
            continue
        key = f"{item.classname}::{item.test}" if item.classname else item.test
        if key in flaky_history or item.test in flaky_history:
            flaky_failures.setdefault(key, item)
            flaky_failures.setdefault(item.test, item)
            continue
        seen.add((item.classname, item.test))
        where = f" at {item.location}" if item.location else ""
        message = first_line(item.message)
        action = {
            Cause.ASSERTION: f"Fix {item.test}{where}: its check fails with “{message}”",
            Cause.DATA_RACE: f"Fix the data race in {item.test}{where}: guard the shared state with a mutex or atomic",
            Cause.PANIC: f"Fix the panic in {item.test}{where}: “{message}”",
            Cause.TIMEOUT: f"Find what {item.test}{where} waits on: it timed out",
            Cause.BUILD: f"Fix the build error in {item.classname or item.test}{where}: “{message}”",
            Cause.NETWORK: f"Check the network path {item.test}{where} depends on: “{message}”",
            Cause.AUTH: f"Check the credentials {item.test}{where} uses: “{message}”",
            Cause.RATE_LIMIT: f"Reduce or space out the API calls of {item.test}{where}: it hit a rate limit",
            Cause.ENVIRONMENT: f"Fix the environment for {item.test}{where}: “{message}”",
            Cause.UNCLASSIFIED: f"Read the log of {item.test}{where} in run {item.run_id}: no message was captured",
        }[item.cause]
        evidence = f"{seen_in_text(item)}; cause {item.cause.value}: {item.cause_evidence}"
        if item.history:
            evidence += f"; history: {item.history}"
        recs.append(Recommendation(category="fix", text=action, evidence=evidence))
    for finding in findings.environment:
        if finding.source == "assess_changes" and finding.phase:
            recs.append(
                Recommendation(
                    category="fix",
                    text=f"Run phase {finding.phase} (`itest-mcp run {finding.phase}`)",
                    evidence=finding.title,
                )
            )
    flaky_keys: set[str] = set()
    if history is not None:
        for stats in history.flaky:
            flaky_keys.add(stats.key)
            failure = flaky_failures.get(stats.key) or flaky_failures.get(stats.name)
            recs.append(_reliability(stats, failure))
    for run_id, test in flaky_now:
        if test.key in flaky_keys:
            continue
        flaky_keys.add(test.key)
        outcomes = ", ".join(a.outcome.value for a in test.attempts)
        recs.append(
            Recommendation(
                category="reliability",
                text=f"Stabilise {test.name}: it failed and then passed on a rerun",
                evidence=f"run {run_id}: attempts {outcomes}",
            )
        )
    failing_names = {item.test for item in findings.failures}
    if history is not None:
        for stats in history.broken:
            if stats.name in failing_names:
                continue
            recs.append(
                Recommendation(
                    category="fix",
                    text=f"Fix or quarantine {stats.name}: it is broken",
                    evidence=f"{stats.evidence}; failure rate {stats.failure_rate:.0%} over {stats.runs} run(s)",
                )
            )
    slowed = {f.test for f in findings.performance if f.source.startswith("history")}
    for finding in findings.performance:
        if not finding.source.startswith("history") and finding.test in slowed:
            continue  # the slowdown recommendation says more
        if finding.source.startswith("history"):
            text = f"Find what slowed down {finding.test}"
        else:
            text = f"Speed up {finding.test} or move it to a slower phase"
        recs.append(
            Recommendation(
                category="performance",
                text=text,
                evidence=finding.title + (f" (run {finding.run_id})" if finding.run_id else ""),
            )
        )
    for idea in coverage.test_ideas[:15]:
        recs.append(Recommendation(category="new-test", text=idea.text, evidence=idea.evidence))
    return recs


def _reliability(stats: TestStats, failure: FailureFinding | None) -> Recommendation:
    """Stabilise a flaky test, saying what happened: first attempts that failed, reruns that passed."""
    where = f" at {failure.location}" if failure is not None and failure.location else ""
    if stats.rerun_passes:
        what = (
            f"it failed on its first attempt in {stats.runs_with_failure} of {stats.runs} run(s); "
            f"passed on a rerun in {stats.rerun_passes}"
        )
    else:
        what = f"it failed in {stats.runs_with_failure} of {stats.runs} run(s) and passed in another on the same commit"
    evidence = stats.evidence
    if failure is not None:
        evidence += f"; its failure, {seen_in_text(failure)}: “{clip(first_line(failure.message), 200)}”"
    return Recommendation(category="reliability", text=f"Stabilise {stats.name}{where}: {what}", evidence=evidence)
