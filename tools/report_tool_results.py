"""What the report reads from the other tools' latest results.

Coverage Analysis comes from find_coverage_gaps (and the coverage files the runs left); the
GitHub API line and its failed checks from validate_github_api; the phases to run and whether
GitHub API code changed from assess_changes. Every field is read defensively: a result of an
older or newer shape gives fewer lines, never a failed report.
"""

from __future__ import annotations

import re
from typing import Any

from .errors import ItestError
from .models import PhaseRun
from .repo import Project
from .report_model import CoverageAnalysis, CoverageFile, CoverageGapEntry, Finding, TestIdea
from .report_text import clip
from .results_store import ERROR_KEY

WELL_COVERED = 80.0


def _get(data: dict[str, Any] | None, *keys: str) -> Any:
    if not isinstance(data, dict):
        return None
    for key in keys:
        if key in data and data[key] is not None:
            return data[key]
    return None


def recommended_phases(assess: dict[str, Any] | None) -> list[str]:
    """The phases an assess_changes result recommends running."""
    value = _get(assess, "recommended_phases", "phases_to_run", "recommended", "phases")
    names: list[str] = []
    if isinstance(value, list):
        for item in value:
            if isinstance(item, str):
                names.append(item)
            elif isinstance(item, dict):
                name = _get(item, "name", "phase")
                if isinstance(name, str) and item.get("recommended", True) is not False:
                    names.append(name)
    return names


def stale_assessment(assess: dict[str, Any] | None, runs: list[PhaseRun]) -> str | None:
    """Why an assess_changes result does not describe the reported runs (its head is another commit), or None."""
    head = _get(assess, "head")
    commits = {run.commit for run in runs if run.commit}
    if not isinstance(head, str) or not head or not commits or head in commits:
        return None
    ran_at = ", ".join(sorted(c[:12] for c in commits))
    return (
        f"the latest assess_changes result is for commit {head[:12]}, not the reported runs' commit {ran_at}; "
        "its recommended phases are ignored (run assess_changes again on this commit)"
    )


def github_api_changed(assess: dict[str, Any] | None) -> bool:
    """Whether an assess_changes result says GitHub API code changed."""
    categories = _get(assess, "categories")
    if isinstance(categories, list):
        for item in categories:
            if isinstance(item, dict) and item.get("category") == "github-api":
                return True
    value = _get(assess, "github_api_changed", "api_changed")
    return value is True


def _host(url: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(url).netloc or url


def github_unreachable(github: dict[str, Any]) -> str | None:
    """ "api.github.com unreachable: <why>" when the validation never got an answer from the API."""
    api = _get(github, "api")
    if not isinstance(api, dict) or api.get("reachable") is not False or not api.get("error"):
        return None
    error = str(api["error"])
    budget = _get(github, "_timeout_s")
    within = f" (gave up after the workflow's {budget:g} s GitHub timeout)" if isinstance(budget, int | float) else ""
    return f"{_host(str(api.get('url', '')))} unreachable: {clip(error, 300)}{within}"


def github_summary(github: dict[str, Any]) -> str:
    """One line on a validate_github_api result: where, token, outcome, rate limit."""
    api = _get(github, "api") or {}
    url = str(api.get("url", "?")) if isinstance(api, dict) else "?"
    token = _get(github, "token") or {}
    if isinstance(token, dict) and token.get("found"):
        who = f"token from {token.get('source', '?')}"
    else:
        who = "no token"
    parts = [f"validate_github_api against {url} with {who}"]
    if isinstance(api, dict) and api.get("reachable"):
        latency = api.get("latency_ms")
        parts.append(f"reachable (HTTP {api.get('status')}" + (f", {latency:.0f} ms)" if latency is not None else ")"))
    else:
        parts.append("unreachable")
    for rate in _get(github, "rate_limits") or []:
        if isinstance(rate, dict) and rate.get("resource") == "core":
            parts.append(f"core rate limit {rate.get('remaining')}/{rate.get('limit')} remaining")
    handling = [c for c in _get(github, "handling") or [] if isinstance(c, dict)]
    if handling:
        passed = sum(1 for c in handling if c.get("passed"))
        parts.append(f"retry handling {passed}/{len(handling)} scenarios passed")
    problems = github_problems(github)
    verdict = f"{len(problems)} problem(s), listed under Critical Findings" if problems else "ok"
    return "; ".join(parts) + f" — {verdict}"


def github_problems(github: dict[str, Any]) -> list[str]:
    """The Critical Findings a validate_github_api result gives: unreachable first, then its failed checks."""
    unreachable = github_unreachable(github)
    found = [unreachable] if unreachable else []
    for check in failed_github_checks(github):
        if unreachable and check.startswith("the API at "):
            continue  # said above, in words that name the host
        found.append(f"GitHub API check failed: {check}")
    return found


def failed_github_checks(github: dict[str, Any]) -> list[str]:
    """Problems a validate_github_api result lists (its own words), plus failed handling and access checks."""
    failed: list[str] = []
    problems = _get(github, "problems")
    if isinstance(problems, list):
        failed += [clip(str(p), 300) for p in problems if p]
    token = _get(github, "token")
    if isinstance(token, dict) and token.get("found") is False and not any("token" in f.lower() for f in failed):
        failed.append("no GitHub token was found" + _unauthenticated_limit(github))
    for case in _get(github, "handling") or []:
        if isinstance(case, dict) and case.get("passed") is False:
            failed.append(
                f"retry handling for {case.get('scenario')}: expected {case.get('expected')}, "
                f"classified as {case.get('classified_as')} {clip(str(case.get('detail') or ''), 160)}".rstrip()
            )
    for repo in _get(github, "repos") or []:
        if isinstance(repo, dict) and repo.get("accessible") is False:
            text = f"repository {repo.get('repo')} is not accessible (HTTP {repo.get('status')})"
            if not any(str(repo.get("repo")) in f for f in failed):
                failed.append(text + (f": {clip(str(repo.get('message')), 160)}" if repo.get("message") else ""))
    if not failed and github.get("ok") is False:
        failed.append("the validation reported ok = false without listing a problem")
    return failed


def _unauthenticated_limit(github: dict[str, Any]) -> str:
    # The core limit the API reported; none when it never answered (a limit is not known, so not claimed).
    for rate in _get(github, "rate_limits") or []:
        if isinstance(rate, dict) and rate.get("resource") == "core" and rate.get("limit") is not None:
            return f" (unauthenticated: {rate.get('limit')} core requests per hour)"
    return ""


def coverage_analysis(
    project: Project, runs: list[PhaseRun], latest: dict[str, dict[str, Any] | None], problems: list[Finding]
) -> CoverageAnalysis:
    """Coverage Analysis from the latest find_coverage_gaps result; unusable coverage files become problems."""
    analysis = CoverageAnalysis()
    for run in runs:
        for rel in run.artifacts.coverage:
            problem = check_coverage_file(project, rel)
            if problem:
                problems.append(
                    Finding(category="input", title=problem, run_id=run.run_id, source="run coverage artifact")
                )
                analysis.notes.append(problem)
    data = latest.get("coverage")
    if data is None:
        analysis.notes.append(
            "no coverage result yet: run find_coverage_gaps (`itest-mcp coverage`) after a phase with coverage"
        )
        return analysis
    if ERROR_KEY in data:
        source = data.get("_source")
        where = f" ({source})" if source else ""
        message = f"the latest coverage file{where} failed to parse: {clip(str(data[ERROR_KEY]), 400)}"
        problems.append(Finding(category="input", title=message, source="find_coverage_gaps"))
        analysis.notes.append(message)
        return analysis
    analysis.source = f"{project.rel(project.state_dir)}/latest/coverage.json"
    _read_coverage_result(data, analysis)
    stale = stale_coverage(data)
    if stale:
        problems.append(Finding(category="input", title=stale, source="find_coverage_gaps"))
        analysis.notes.insert(0, stale)
    return analysis


def stale_coverage(data: dict[str, Any]) -> str | None:
    """Why the coverage says nothing of some changed files (edited after it was recorded), or None."""
    patch = _get(data, "patch")
    names = [str(f) for f in _get(patch, "stale_files") or [] if f] if isinstance(patch, dict) else []
    if not names:
        return None
    shown = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
    lines = _get(patch, "stale_lines")
    left_out = f"; their {lines} changed line(s) are left out of the changed-line figures" if lines else ""
    return (
        f"coverage is stale for {shown} (edited after the coverage was recorded){left_out}; "
        "rerun the phase with coverage"
    )


def _unit_total(totals: dict[str, Any]) -> str:
    # "50/70 statements over 3 files"; results stored before totals named their unit counted lines.
    covered, measured, files = (totals.get(k, "?") for k in ("covered", "measured", "files"))
    return f"{covered}/{measured} {totals.get('unit') or 'lines'} over {files} files"


def _per_unit_totals(totals: dict[str, Any]) -> str | None:
    # Go statements and line-format lines are never added together: one figure per unit, no overall percent.
    figures = []
    for unit in totals.get("by_unit") or []:
        if isinstance(unit, dict):
            percent = unit.get("percent")
            shown = f"{percent:.1f}% " if isinstance(percent, int | float) else ""
            figures.append(f"{shown}({_unit_total(unit)})")
    return "; ".join(figures) or None


def _uncovered_text(changed: dict[str, Any]) -> str:
    """ "3 changed line(s) never executed, 2 partly executed (…)", in find_coverage_gaps' own words when the
    result splits its uncovered lines; results stored before the split say how many no test executed."""
    from pydantic import ValidationError

    from .coverage import ChangedFileCoverage, describe_uncovered

    try:
        text = describe_uncovered(ChangedFileCoverage.model_validate(changed))
    except ValidationError:
        text = ""
    return (
        text
        or f"{changed.get('uncovered', len(changed.get('uncovered_ranges') or []))} changed line(s) no test executed"
    )


def _read_coverage_result(data: dict[str, Any], analysis: CoverageAnalysis) -> None:
    """Fill the analysis from a find_coverage_gaps result, reading every field defensively."""
    src = analysis.source
    totals = _get(data, "totals")
    total = _get(totals, "percent") if isinstance(totals, dict) else _get(data, "total_percent", "percent")
    if isinstance(total, int | float):
        analysis.total_percent = round(float(total), 2)
        if isinstance(totals, dict):
            analysis.total_lines = _unit_total(totals)
    elif isinstance(totals, dict) and totals.get("unit") == "mixed":
        analysis.total_lines = _per_unit_totals(totals)
    patch = _get(data, "patch")
    if isinstance(patch, dict) and isinstance(patch.get("percent"), int | float):
        analysis.changed_lines_percent = round(float(patch["percent"]), 2)
        analysis.changed_lines = f"{patch.get('covered', '?')}/{patch.get('measured', '?')} changed lines covered"
        if patch.get("partly_executed"):
            uncovered = patch.get("uncovered", "?")
            analysis.changed_lines += f"; {patch['partly_executed']} of the {uncovered} uncovered partly executed"
    areas: list[CoverageFile] = []
    for item in _get(data, "files") or []:
        if isinstance(item, dict):
            name = _get(item, "path", "file", "name")
            pct = _get(item, "percent")
            if isinstance(name, str) and isinstance(pct, int | float) and item.get("measured", 1):
                areas.append(CoverageFile(name=name, percent=round(float(pct), 2)))
    areas.sort(key=lambda a: (-a.percent, a.name))
    analysis.well_covered = [a for a in areas if a.percent >= WELL_COVERED][:15]
    for changed in _get(data, "changed_files") or []:
        if not isinstance(changed, dict) or not isinstance(changed.get("path"), str):
            continue
        ranges = changed.get("uncovered_ranges") or []
        if not ranges:
            continue
        analysis.gaps.append(
            CoverageGapEntry(
                file=changed["path"], lines=_lines_text({"lines": ranges}), detail=_uncovered_text(changed)
            )
        )
    for func in _get(data, "uncovered_functions") or []:
        if not isinstance(func, dict) or not isinstance(func.get("file"), str):
            continue
        reasons = ", ".join(str(r) for r in func.get("reasons") or [])
        analysis.gaps.append(
            CoverageGapEntry(
                file=f"{func['file']}:{func.get('line', '?')}",
                lines=f"{func.get('line', '?')}-{func.get('end_line', '?')}",
                detail=f"function {func.get('name')}: {func.get('covered', 0)}/{func.get('measured', 0)} "
                f"{func.get('unit') or 'lines'} covered" + (f" ({reasons})" if reasons else ""),
            )
        )
    del analysis.gaps[50:]
    for scenario in _get(data, "scenarios") or []:
        if isinstance(scenario, dict) and scenario.get("exercised") is False:
            title = scenario.get("title") or scenario.get("scenario")
            analysis.unexercised.append(f"{scenario.get('suite', '?')}: {title}")
    analysis.test_ideas = _test_ideas(data, src)
    if not analysis.test_ideas:
        for entry in analysis.gaps[:10]:
            analysis.test_ideas.append(
                TestIdea(
                    text=f"Add an integration test that exercises {entry.file}"
                    + (f" lines {entry.lines}" if entry.lines else ""),
                    evidence=f"{entry.detail} ({src})",
                )
            )
    for note in _get(data, "notes") or []:
        analysis.notes.append(clip(str(note), 300))
    unmatched = _get(data, "unmatched") or []
    if unmatched:
        analysis.notes.append(f"{len(unmatched)} path(s) in the coverage data matched no file in the repository")


# find_coverage_gaps ranks a missing scenario as "<title> (<suite>): write <test>"; the same scenario is in
# its `scenarios` list with a suggestion. Both name one new test, so they merge on (suite, test).
MISSING_SCENARIO = re.compile(r"^(?P<title>.+?) \((?P<suite>[^()]+)\): write (?P<test>\S+)$")


def _test_ideas(data: dict[str, Any], src: str | None) -> list[TestIdea]:
    """New tests from ranked gaps and unexercised scenarios, one per (suite, test), ranked ones first."""
    ideas: dict[tuple[str, ...], dict[str, Any]] = {}
    for gap in _get(data, "top_gaps") or []:
        if not isinstance(gap, dict) or not gap.get("what"):
            continue
        if gap.get("kind") == "stale-coverage":
            continue  # no test to write: the coverage is out of date (a Critical Finding says to rerun the phase)
        what, where = str(gap["what"]), str(gap.get("where", "?"))
        match = MISSING_SCENARIO.match(what) if gap.get("kind") == "missing-scenario" else None
        ranked = f"ranked gap #{gap.get('rank', '?')} ({gap.get('kind', 'gap')})"
        if match is None:
            why = str(gap.get("why") or "")
            ideas[("gap", what, where)] = {"text": f"Cover {what} at {where}", "evidence": [f"{ranked}: {why}"]}
            continue
        idea = ideas.setdefault(("scenario", match["suite"], match["test"]), {"evidence": []})
        idea.update(suite=match["suite"], test=match["test"], title=match["title"], file=where)
        idea["how"] = _richer(idea.get("how"), str(gap.get("why") or ""))
        idea["evidence"].append(ranked)
    for scenario in _get(data, "scenarios") or []:
        if not isinstance(scenario, dict) or scenario.get("exercised") is not False:
            continue
        suggestion = scenario.get("suggestion")
        if not isinstance(suggestion, dict) or not suggestion.get("test"):
            continue
        suite, test = str(scenario.get("suite", "?")), str(suggestion["test"])
        idea = ideas.setdefault(("scenario", suite, test), {"evidence": []})
        idea.update(suite=suite, test=test, title=scenario.get("title") or scenario.get("scenario"))
        idea.setdefault("file", suggestion.get("file", "?"))
        idea["how"] = _richer(idea.get("how"), str(suggestion.get("how") or ""))
        idea["evidence"].append(f"no {suite} test exercises this scenario")
    out: list[TestIdea] = []
    for idea in ideas.values():
        if "text" not in idea:
            how = f": {idea['how']}" if idea.get("how") else ""
            idea["text"] = f"Add {idea['test']} in {idea['file']} to exercise “{idea['suite']}: {idea['title']}”{how}"
        evidence = "; ".join(idea["evidence"]) + (f" ({src})" if src else "")
        out.append(TestIdea(text=idea["text"], evidence=evidence))
    return out


def _richer(current: str | None, candidate: str) -> str:
    # The ranked gap's "why" names the function to exercise when it knows one; keep the text that says more.
    return candidate if len(candidate) > len(current or "") else current or ""


def _lines_text(gap: dict[str, Any]) -> str:
    lines = _get(gap, "lines", "ranges", "line_ranges")
    if isinstance(lines, str):
        return lines
    if isinstance(lines, list):
        parts: list[str] = []
        for item in lines[:20]:
            if isinstance(item, int):
                parts.append(str(item))
            elif isinstance(item, list | tuple) and len(item) == 2:
                parts.append(f"{item[0]}-{item[1]}" if item[0] != item[1] else str(item[0]))
            elif isinstance(item, dict):
                start, end = _get(item, "start", "from"), _get(item, "end", "to")
                if start is not None:
                    parts.append(f"{start}-{end}" if end not in (None, start) else str(start))
        return ", ".join(parts)
    start, end = _get(gap, "start", "start_line", "line"), _get(gap, "end", "end_line")
    if start is not None:
        return f"{start}-{end}" if end not in (None, start) else str(start)
    return ""


def check_coverage_file(project: Project, rel: str) -> str | None:
    """Why a coverage file a run left cannot be used (read with the coverage readers), or None."""
    from .covreaders import read_coverage
    from .errors import CoverageError

    try:
        path = project.resolve_path(rel, what="coverage file")
    except ItestError as exc:
        return f"coverage file {rel!r} cannot be used: {exc}"
    if not path.is_file():
        return f"coverage file {rel} listed by the run is missing"
    try:
        read_coverage(path)
    except CoverageError as exc:
        return f"coverage file {rel} failed to parse: {clip(str(exc).replace(str(path), rel), 400)}"
    return None
