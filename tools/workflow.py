"""The one-shot workflow: assess → run the recommended phases in order → rerun failures →
coverage gaps → GitHub validation when API code changed → report.

It is what the `integration_test_workflow` prompt walks an assistant through, done
without one (`itest-mcp workflow`). Each step is built on the public function of
its module (imported when the step runs, so the prompt costs start-up nothing); a step
that fails is recorded with its reason and the workflow goes on: the report says what was not
done rather than the workflow stopping half way.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from urllib.parse import urlsplit

from pydantic import BaseModel, Field

from .errors import InputError, ItestError
from .github import RetryPolicy
from .models import Model, PhaseRun, RunStatus
from .phases import PhaseSet, Runner
from .repo import Project, ensure_not_option
from .report import build_report
from .report_model import Report
from .report_sections import phase_covers
from .results_store import save_error, save_latest

log = logging.getLogger("itest_mcp.workflow")

RERUN_FAILURES = 2
"""Reruns of each failing test inside its phase run: fail-then-pass is flaky, fail-fail-fail is broken."""
GITHUB_TIMEOUT_S = 10.0
"""The whole GitHub validation step's budget. Without network the client's default retries (5 attempts,
backoff up to 32 s) took 13.8 s on a DNS failure and up to its 60 s deadline on a black-holed address; a
workflow should say "unreachable" and go on to the report. `--github-timeout` changes it."""
GITHUB_POLICY = RetryPolicy(max_attempts=3, backoff_base_s=0.5, backoff_max_s=2.0, request_timeout_s=4.0)
"""Fewer, shorter retries than an interactive validate_github_api: a workflow step, not a diagnosis session."""
WIDE_PHASE_MIN = 2
"""A recommended phase that runs every test of at least this many other recommended phases replaces them.

assess_changes recommends `all` together with each per-file phase whose files a change touches, so running
them all runs those tests twice. A Go phase covers another when its test files include the other's and it
builds and runs them the same way (report.phase_covers). Running the wide phase alone runs each test once and
pays for one `go test -race` build instead of one per phase (on the demo: `all` 8.5 s against 27.7 s for
`all` plus five per-file phases). With a single covered phase the per-file run is kept: it is the focused
signal for the change and its duplicate costs one small phase. Per-phase attribution in the report is kept
by the failure finding, which names the test, its file:line and the phase it ran in.
"""

Say = Callable[[str], Awaitable[None]]


class WorkflowStep(Model):
    """One step of the workflow and what came of it."""

    name: str
    status: str
    """"ok", "failed" (it ran and found problems), "skipped" (with why) or "error" (it could not run)."""
    detail: str = ""
    run_ids: list[str] = Field(default_factory=list)


class WorkflowResult(Model):
    """Every step, the runs made, the report, and the exit code a CI job should use."""

    steps: list[WorkflowStep] = Field(default_factory=list)
    run_ids: list[str] = Field(default_factory=list)
    report: Report | None = None
    exit_code: int = 0
    """0 every phase passed (flaky allowed), 1 a phase failed, 2 the workflow could not run a phase."""


async def _quiet(_message: str) -> None:
    return None


async def run_workflow(
    project: Project,
    base: str | None = None,
    *,
    say: Say | None = None,
    now: datetime | None = None,
    github_api_url: str | None = None,
    github_timeout_s: float = GITHUB_TIMEOUT_S,
    only: list[str] | None = None,
    wide_phase_min: int = WIDE_PHASE_MIN,
    all_phases: bool = False,
) -> WorkflowResult:
    """Run the whole integration-test workflow once and build the report."""
    say = say or _quiet
    if base is not None:
        # A base the user named must exist: running every phase against some other range instead would answer a
        # question they did not ask. The run-everything fallback in `_assess` is for the default base only.
        from .gitdiff import resolve_commit

        resolve_commit(project, "base", base)
    if not 0 < github_timeout_s <= 600:
        raise InputError(
            f"GitHub timeout {github_timeout_s!r} s is out of range; give more than 0 and at most 600 seconds "
            "(e.g. --github-timeout 10)"
        )
    if only is not None:
        _check_phase_names(project, only)
    result = WorkflowResult()
    assessment = await _assess(project, base, result, say)
    phases = _phases_to_run(
        project, assessment, result, only=only, wide_phase_min=wide_phase_min, all_phases=all_phases
    )
    runs = await _run_phases(project, phases, result, say)
    _rerun_summary(project, runs, result)
    await _coverage(project, runs, base, result, say)
    await _github(project, assessment, result, say, github_api_url, github_timeout_s)
    await say("building the report")
    try:
        result.report = build_report(project, result.run_ids or None, now=now)
        result.steps.append(
            WorkflowStep(
                name="report",
                status="ok",
                detail=f"saved {result.report.files.markdown} and {result.report.files.json_path}",
            )
        )
    except ItestError as exc:
        result.steps.append(WorkflowStep(name="report", status="error", detail=str(exc)))
        result.exit_code = 2
    return result


async def _assess(project: Project, base: str | None, result: WorkflowResult, say: Say) -> BaseModel | None:
    from .changes import assess_changes

    await say("assessing changes" + (f" against {base}" if base else ""))
    try:
        assessment: BaseModel = assess_changes(project, base)
    except ItestError as exc:
        result.steps.append(
            WorkflowStep(name="assess", status="error", detail=f"{exc}; running every available phase instead")
        )
        return None
    save_latest(project, "assess", assessment)
    summary = getattr(assessment, "summary", "")
    result.steps.append(WorkflowStep(name="assess", status="ok", detail=str(summary)))
    return assessment


def _phases_to_run(
    project: Project,
    assessment: BaseModel | None,
    result: WorkflowResult,
    *,
    only: list[str] | None = None,
    wide_phase_min: int = WIDE_PHASE_MIN,
    all_phases: bool = False,
) -> list[str]:
    from .phases import load_phases

    phase_set = load_phases(project)
    order = {name: i for i, name in enumerate(phase_set.names())}
    if all_phases:
        names = _baseline(phase_set, result, "asked for every phase")
    else:
        names = _recommended(phase_set, assessment, result)
        if not names and only is None and assessment is not None and not _has_runs(project):
            # A first run on an unchanged tree (a fresh clone): an empty report helps nobody,
            # and later runs need something to be compared with.
            names = _baseline(phase_set, result, "nothing changed and no phase has run here yet")
    if only is not None:
        left_out = [n for n in names if n not in only]
        if left_out:
            result.steps.append(
                WorkflowStep(
                    name="phases", status="skipped", detail=f"left out (--phase limits the run): {', '.join(left_out)}"
                )
            )
        extra = [n for n in only if n not in names]
        if extra:
            result.steps.append(
                WorkflowStep(
                    name="phases",
                    status="ok",
                    detail=f"running {', '.join(extra)} as asked, though assess_changes did not recommend it",
                )
            )
        names = [n for n in names if n in only] + extra
    names = sorted(dict.fromkeys(names), key=lambda n: order.get(n, len(order)))
    names = _drop_covered(phase_set, names, result, wide_phase_min)
    return _drop_duplicate_commands(project, phase_set, names, result)


def _check_phase_names(project: Project, only: list[str]) -> None:
    from .phases import load_phases

    names = load_phases(project).names()
    for name in only:
        ensure_not_option("phase", name)
        if name not in names:
            raise InputError(
                f"phase {name!r} is not a phase of this project; phases here: {', '.join(names)} "
                "(`itest-mcp phases` shows what each runs)"
            )


def _recommended(phase_set: PhaseSet, assessment: BaseModel | None, result: WorkflowResult) -> list[str]:
    if assessment is None:
        return [p.name for p in phase_set.phases if p.available]
    recommended = getattr(assessment, "recommended", []) or []
    names = [r.phase for r in recommended if getattr(r, "available", True)]
    missing = [r.phase for r in recommended if not getattr(r, "available", True)]
    if missing:
        result.steps.append(
            WorkflowStep(
                name="phases",
                status="skipped",
                detail=f"recommended but cannot run here: {', '.join(missing)} (see list_phases notes)",
            )
        )
    if not names and not missing:
        result.steps.append(
            WorkflowStep(name="phases", status="skipped", detail="assess_changes recommends no phase for this change")
        )
    return names


def _baseline(phase_set: PhaseSet, result: WorkflowResult, why: str) -> list[str]:
    """Every available go and pytest phase: the run to make when there is nothing to compare against.

    Command phases (make/magex targets) are left out: discovery makes them from the same
    test files as the go phases, so a baseline would run those tests twice.
    """
    names = [p.name for p in phase_set.phases if p.available and p.runner is not Runner.COMMAND]
    left = [p.name for p in phase_set.phases if p.available and p.runner is Runner.COMMAND]
    detail = f"{why}: running every go/pytest phase once as a baseline"
    if left:
        detail += f" (task-runner phases {', '.join(left)} left out: they run the same tests)"
    result.steps.append(WorkflowStep(name="phases", status="ok", detail=detail))
    return names


def _has_runs(project: Project) -> bool:
    runs_dir = project.state_dir / "runs"
    return runs_dir.is_dir() and any(runs_dir.iterdir())


def _drop_covered(phase_set: PhaseSet, names: list[str], result: WorkflowResult, wide_phase_min: int) -> list[str]:
    """Replace the phases a wider selected phase runs in full (see WIDE_PHASE_MIN) by that phase."""
    phases = [phase_set.get(n) for n in names]
    # Widest first, so `all` claims the per-file phases before any narrower phase could.
    dropped: set[str] = set()
    for outer in sorted(phases, key=lambda p: -len(p.test_files)):
        if outer.name in dropped:
            continue
        covered = [p.name for p in phases if p.name not in dropped and phase_covers(outer, p)]
        if len(covered) < wide_phase_min:
            continue
        dropped.update(covered)
        result.steps.append(
            WorkflowStep(
                name="phases",
                status="ok",
                detail=(
                    f"running {outer.name} instead of {', '.join(covered)}: {outer.name} runs every test file of "
                    "theirs with the same tags and flags, so running them too would run those tests twice"
                ),
            )
        )
    return [n for n in names if n not in dropped]


def _drop_duplicate_commands(
    project: Project, phase_set: PhaseSet, names: list[str], result: WorkflowResult
) -> list[str]:
    """Leave out `make` phases whose recipe is only `go test` of tests a selected Go phase runs.

    Running both runs those tests twice and counts them twice, and the command phase tells less: plain
    `go test` prints no per-test lines, and a command cannot be rerun test by test.
    """
    from .make_recipes import find_makefile, go_phase_runs_all, go_test_calls

    makefile = find_makefile(project.root)
    if makefile is None:
        return names
    go_phases = [phase_set.get(n) for n in names if phase_set.get(n).runner is Runner.GO]
    dropped: set[str] = set()
    for name in names:
        phase = phase_set.get(name)
        if phase.runner is not Runner.COMMAND or len(phase.argv) != 2 or phase.argv[0] != "make":
            continue
        calls = go_test_calls(makefile, phase.argv[1])
        wider = next((g for g in go_phases if calls and go_phase_runs_all(g, calls)), None)
        if calls is None or wider is None:
            continue
        dropped.add(name)
        packages = ", ".join(sorted({p for c in calls for p in c.packages}))
        result.steps.append(
            WorkflowStep(
                name="phases",
                status="ok",
                detail=(
                    f"left out {name}: `make {phase.argv[1]}` only runs go test of {packages}, tests that "
                    f"{wider.name} runs with the same build tags (and reports per test, with reruns)"
                ),
            )
        )
    return [n for n in names if n not in dropped]


async def _run_phases(project: Project, phases: list[str], result: WorkflowResult, say: Say) -> list[PhaseRun]:
    from .runner import RunOptions, run_phase

    runs: list[PhaseRun] = []
    for index, name in enumerate(phases, 1):
        await say(f"running phase {name} ({index}/{len(phases)})")
        try:
            run: PhaseRun = await run_phase(
                project, name, RunOptions(rerun_failures=RERUN_FAILURES, coverage=_wants_coverage(project, name))
            )
        except ItestError as exc:
            result.steps.append(WorkflowStep(name=f"run {name}", status="error", detail=str(exc)))
            result.exit_code = max(result.exit_code, 2)
            continue
        # run_phase has recorded the run in history already (or noted why it could not).
        runs.append(run)
        result.run_ids.append(run.run_id)
        t = run.report.totals
        status = "ok" if run.status is RunStatus.PASSED else "failed"
        if run.status is not RunStatus.PASSED:
            result.exit_code = max(result.exit_code, 1)
        result.steps.append(
            WorkflowStep(
                name=f"run {name}",
                status=status,
                detail=(
                    f"{run.status.value} in {run.duration_s:.1f} s: {t.tests} tests, {t.passed} passed, "
                    f"{t.failed} failed, {t.errors} errors, {t.skipped} skipped, {t.flaky} flaky"
                ),
                run_ids=[run.run_id],
            )
        )
    return runs


def _wants_coverage(project: Project, phase: str) -> bool:
    # Coverage needs a phase the runner can instrument (go or pytest); a command phase writes its own.
    from .phases import Runner, load_phases

    try:
        return load_phases(project).get(phase).runner in (Runner.GO, Runner.PYTEST)
    except ItestError:
        return False


def _rerun_summary(project: Project, runs: list[PhaseRun], result: WorkflowResult) -> None:
    """What the reruns showed, counting only the runs that could rerun; failures of the others said apart."""
    from .phases import load_phases

    if not runs:
        return
    try:
        # Only go and pytest phases rerun single tests; a command phase ran once, whatever failed.
        rerunnable = {p.name for p in load_phases(project).phases if p.runner is not Runner.COMMAND}
    except ItestError:
        rerunnable = {r.phase for r in runs}
    rerun = [r for r in runs if r.phase in rerunnable]
    once = [r for r in runs if r.phase not in rerunnable and r.report.totals.failed + r.report.totals.errors]
    flaky = sum(r.report.totals.flaky for r in rerun)
    failed = sum(r.report.totals.failed + r.report.totals.errors for r in rerun)
    parts: list[str] = []
    if flaky or failed:
        parts.append(
            f"each failing test was rerun up to {RERUN_FAILURES} times: {flaky} passed on a rerun (flaky), "
            f"{failed} failed every attempt"
        )
    if once:
        not_rerun = sum(r.report.totals.failed + r.report.totals.errors for r in once)
        parts.append(
            f"{not_rerun} failure(s) in {', '.join(r.phase for r in once)} not rerun: a command phase cannot be "
            "rerun test by test"
        )
    detail = "; ".join(parts) or "no failures to rerun"
    status = "failed" if failed or once else "ok"
    result.steps.append(WorkflowStep(name="rerun failures", status=status, detail=detail, run_ids=[]))


async def _coverage(project: Project, runs: list[PhaseRun], base: str | None, result: WorkflowResult, say: Say) -> None:
    from .coverage import find_coverage_gaps

    files = [c for r in runs for c in r.artifacts.coverage]
    if not files:
        result.steps.append(
            WorkflowStep(name="coverage gaps", status="skipped", detail="no run of this workflow wrote a coverage file")
        )
        return
    await say("finding coverage gaps")
    try:
        gaps: BaseModel = find_coverage_gaps(project, files, base=base)
    except ItestError as exc:
        save_error(project, "coverage", exc, source=", ".join(files))
        result.steps.append(WorkflowStep(name="coverage gaps", status="error", detail=str(exc)))
        return
    save_latest(project, "coverage", gaps)
    result.steps.append(WorkflowStep(name="coverage gaps", status="ok", detail=f"from {len(files)} coverage file(s)"))


def _api_changed(assessment: BaseModel | None) -> bool:
    categories = getattr(assessment, "categories", None) or []
    return any(getattr(c, "category", None) == "github-api" for c in categories)


async def _github(
    project: Project,
    assessment: BaseModel | None,
    result: WorkflowResult,
    say: Say,
    api_url: str | None,
    timeout_s: float,
) -> None:
    if assessment is None or not _api_changed(assessment):
        why = "no assessment" if assessment is None else "no GitHub API code changed"
        result.steps.append(WorkflowStep(name="github validation", status="skipped", detail=why))
        return
    from .github_validate import validate_github_api

    await say(f"validating GitHub API access (GitHub API code changed; at most {timeout_s:g} s)")
    policy = GITHUB_POLICY.model_copy(update={"request_timeout_s": min(GITHUB_POLICY.request_timeout_s, timeout_s)})
    try:
        validation: BaseModel = await validate_github_api(project, api_url=api_url, timeout_s=timeout_s, policy=policy)
    except ItestError as exc:
        save_error(project, "github", exc)
        result.steps.append(WorkflowStep(name="github validation", status="error", detail=str(exc)))
        return
    save_latest(project, "github", validation, meta={"timeout_s": timeout_s})
    ok = bool(getattr(validation, "ok", False))
    problems = [str(p) for p in getattr(validation, "problems", []) or []]
    api = getattr(validation, "api", None)
    if api is not None and not getattr(api, "reachable", True) and getattr(api, "error", None):
        host = urlsplit(str(api.url)).netloc or str(api.url)
        problems = [f"{host} unreachable: {api.error} (gave up within the {timeout_s:g} s GitHub timeout)"] + [
            p for p in problems if not p.startswith("the API at ")
        ]
    detail = "ok" if ok else "; ".join(problems[:3]) or "not ok"
    result.steps.append(WorkflowStep(name="github validation", status="ok" if ok else "failed", detail=detail))


def render_workflow(result: WorkflowResult) -> str:
    """The steps as terminal lines, then where the report is."""
    marks = {"ok": "✓", "failed": "✗", "skipped": "–", "error": "!"}
    lines = [f"{marks.get(s.status, '?')} {s.name}: {s.detail}" for s in result.steps]
    if result.report is not None:
        r = result.report
        t = r.summary.totals
        lines.append("")
        lines.append(
            f"report {r.report_id}: {len(r.run_ids)} run(s), {t.tests} tests, {t.passed} passed, "
            f"{t.failed + t.errors} failed, {t.flaky} flaky; {len(r.findings.failures)} failure finding(s), "
            f"{len(r.recommendations)} recommendation(s)"
        )
        lines.append(f"  {r.files.markdown}")
    return "\n".join(lines)


def workflow_prompt(focus: str | None = None) -> str:
    """The `integration_test_workflow` prompt: the steps an assistant follows, with the tool for each."""
    focus_text = (
        f"\nFocus: {focus.strip()}. Keep to phases, tests and findings that bear on it, and say so in the "
        "report summary when you leave something out.\n"
        if focus and focus.strip()
        else ""
    )
    return f"""Run this repository's integration-test workflow with the itest-mcp tools, in this order.
{focus_text}
1. Assess: call `assess_changes` (pass `base` if the user named a branch or commit). Read its categories,
   risk lines and `recommended` phases with their reasons. If nothing is recommended, say why (its
   `not_recommended` list) and stop after step 6.
2. Run: call `run_phase` for each recommended phase in the order given (or `run_phases` with the list),
   with `rerun_failures=2` and `coverage=true`. Report progress as it comes. Do not invent commands: only
   phases from `list_phases` run. When `all` is recommended together with two or more per-file phases whose
   test files it runs with the same tags and flags, run `all` instead of those and say so: running both runs
   the same tests twice.
3. Rerun failures: a test that failed and then passed on a rerun is flaky; one that failed every attempt is
   broken. For a broken test, read its failure (file:line, message) and, if needed, the run log resource
   `itest://runs/{{run_id}}/log`. Call `flaky_tests` to see whether it failed in earlier runs too.
4. Coverage gaps: call `find_coverage_gaps` on the runs that wrote coverage; note changed lines no test
   executes.
5. GitHub validation: only if `assess_changes` listed the `github-api` category, call
   `validate_github_api` and note token, rate-limit and access problems.
6. Report: call `build_report` with the run ids from step 2 (format `md`; `html` when the user wants a
   file to share). Present its four sections — Test Execution Summary, Critical Findings, Coverage
   Analysis, Recommendations — and quote its numbers; add no claim the report does not back with data.
"""
