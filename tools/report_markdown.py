"""The report as markdown: exactly the four sections, each saying in numbers why it is empty when it is."""

from __future__ import annotations

from .report_model import SECTIONS, ExecutionSummary, Finding, Report
from .report_sections import performance_rule
from .report_text import clip, first_line
from .report_tool_results import WELL_COVERED


def _inline(text: str, limit: int = 200) -> str:
    return clip(first_line(text).replace("`", "'"), limit)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


RECOMMENDATION_GROUPS = (
    ("fix", "Immediate fixes"),
    ("reliability", "Reliability"),
    ("performance", "Performance"),
    ("new-test", "New integration tests"),
)


def empty_recommendation_reason(report: Report, category: str) -> str:
    """Why a recommendation group is empty, in numbers."""
    s, c = report.summary, report.coverage
    if category == "fix":
        return f"nothing to fix: no failures in {len(s.runs)} run(s)"
    if category == "reliability":
        if report.history:
            h = report.history
            return (
                f"no flaky tests in the last {h.window} runs of each phase "
                f"({h.runs_considered} runs, {h.tests_seen} tests)"
            )
        return "no flaky tests in these runs; history was unavailable"
    if category == "performance":
        return f"no test met the rule under Critical Findings → Performance in {len(s.runs)} run(s){_slowest_basis(s)}"
    return "no coverage gaps recorded" if c.source else "no coverage result to derive new tests from"


def _slowest_basis(s: ExecutionSummary) -> str:
    if not s.slowest:
        return ""
    top = s.slowest[0]
    share = f", {top.share_of_phase:.0%} of phase {top.phase}" if top.share_of_phase is not None else ""
    return f"; the slowest test was {top.name} at {top.duration_s:.2f} s{share}"


def _finding_line(item: Finding) -> str:
    run = f" (run `{item.run_id}`)" if item.run_id else ""
    detail = f" — {item.detail}" if item.detail else ""
    return f"- {item.title}{detail}{run}"


def render_markdown(report: Report) -> str:
    """The report as markdown with exactly the four sections."""
    s = report.summary
    out: list[str] = ["# Integration test report", ""]
    commit = f"`{report.commit[:12]}`" if report.commit else "no commit"
    out.append(
        f"Project `{report.project_root}` · commit {commit} · {len(report.run_ids)} run(s) "
        f"({report.selection}) · {report.created_at.strftime('%Y-%m-%d %H:%M:%S %Z').strip()} · `{report.report_id}`"
    )
    out += ["", f"## {SECTIONS[0]}", ""]
    out.append("| Phase | Run | Status | Tests | Passed | Failed | Errors | Skipped | Flaky | Duration |")
    out.append("|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in s.runs:
        t = r.totals
        dirty = " (dirty tree)" if r.dirty else ""
        out.append(
            f"| {_cell(r.phase)} | `{r.run_id}`{dirty} | {r.status.value} | {t.tests} | {t.passed} | {t.failed} | "
            f"{t.errors} | {t.skipped} | {t.flaky} | {r.duration_s:.2f} s |"
        )
    t = s.totals
    out.append("")
    out.append(
        f"Total: {len(s.runs)} run(s) in {s.total_duration_s:.2f} s; {t.tests} tests — {t.passed} passed, "
        f"{t.failed} failed, {t.errors} errors, {t.skipped} skipped, {t.flaky} flaky ({t.attempts} attempts); "
        f"pass rate {_pct(s.pass_rate)}."
    )
    for note in s.covered:
        out += ["", f"Not run separately: {note}."]
    if s.github:
        out += ["", f"GitHub API: {s.github}."]
    if s.slowest:
        out += ["", "Slowest tests:", ""]
        for i, e in enumerate(s.slowest[:5], 1):
            share = f", {e.share_of_phase:.0%} of the phase" if e.share_of_phase else ""
            under = f"; its subtest {e.subtest}" if e.subtest else ""
            out.append(f"{i}. `{e.name}` ({e.phase}, `{e.run_id}`): {e.duration_s:.2f} s{share}{under}")
    f = report.findings
    out += ["", f"## {SECTIONS[1]}", ""]
    out.append(f"### Failures ({len(f.failures) + f.failures_omitted})")
    out.append("")
    if f.failures:
        out.append("By cause: " + ", ".join(f"{cause} {count}" for cause, count in f.causes.items()) + ".")
        out.append("")
        for i, item in enumerate(f.failures, 1):
            where = f" at `{item.location}`" if item.location else ""
            if len(item.seen_in) > 1:
                phases = item.phases or [item.phase]
                label = "phases" if len(phases) > 1 else "phase"
                runs = ", ".join(f"`{r}`" for r in item.seen_in)
                where_seen = f"seen in {label} {', '.join(phases)} (runs {runs}); output from `{item.run_id}`"
            else:
                where_seen = f"phase {item.phase}, run `{item.run_id}`"
            out.append(
                f"{i}. **{item.test}** — {item.cause.value}{where} ({where_seen}, "
                f"{item.outcome.value}, {item.attempts} attempt(s))"
            )
            if item.message:
                out.append(f"   - message: `{_inline(item.message)}`")
            out.append(f"   - why {item.cause.value}: {item.cause_evidence}")
            if item.history:
                out.append(f"   - history: {item.history}")
            if item.excerpt and item.excerpt.strip() != item.message.strip():
                lines = item.excerpt.strip("\n").splitlines()[-12:]
                out.append("")
                out.append("   ```text")
                out += ["   " + line.replace("```", "'''") for line in lines]
                out.append("   ```")
        if f.failures_omitted:
            out.append(f"\n{f.failures_omitted} more failure(s) are in the JSON report and the run folders.")
    else:
        out.append(f"No failing tests in {len(s.runs)} run(s) ({s.totals.tests} tests).")
    out += ["", f"### Performance ({len(f.performance)})", ""]
    out.append(f"Rule: {performance_rule()}.")
    out.append("")
    if f.performance:
        for perf in f.performance:
            out.append(_finding_line(perf))
    else:
        out.append(f"No test met the rule in {len(s.runs)} run(s){_slowest_basis(s)}.")
    out += ["", f"### Environment and configuration ({len(f.environment)})", ""]
    if f.environment:
        for env in f.environment:
            out.append(_finding_line(env))
    else:
        out.append(f"No missing tools, skipped phases or unreadable results; all {len(s.runs)} run(s) completed.")
    c = report.coverage
    out += ["", f"## {SECTIONS[2]}", ""]
    if c.total_percent is not None:
        lines_text = f", {c.total_lines}" if c.total_lines else ""
        out.append(f"Total coverage: {c.total_percent:.1f}%{lines_text} (from `{c.source}`).")
        out.append("")
    elif c.total_lines:  # statements and lines, never added together: one figure per unit
        out.append(f"Total coverage: {c.total_lines} (from `{c.source}`).")
        out.append("")
    if c.changed_lines_percent is not None:
        out.append(f"Changed lines: {c.changed_lines_percent:.1f}% ({c.changed_lines}).")
        out.append("")
    if c.well_covered:
        out.append(
            f"Well covered (≥ {WELL_COVERED:.0f}%): "
            + ", ".join(f"`{a.name}` {a.percent:.0f}%" for a in c.well_covered)
            + "."
        )
        out.append("")
    if c.gaps:
        out.append(f"Gaps ({len(c.gaps)}):")
        out.append("")
        for gap in c.gaps:
            span = f" lines {gap.lines}" if gap.lines else ""
            detail = f" — {gap.detail}" if gap.detail else ""
            out.append(f"- `{gap.file}`{span}{detail}")
        out.append("")
    if c.unexercised:
        out.append("Never exercised by the suites: " + ", ".join(f"`{u}`" for u in c.unexercised) + ".")
        out.append("")
    for note in c.notes:
        out.append(f"- {note}")
    if out[-1] == "":
        out.pop()
    out += ["", f"## {SECTIONS[3]}", ""]
    groups = RECOMMENDATION_GROUPS
    for category, title in groups:
        items = [r for r in report.recommendations if r.category == category]
        out += [f"### {title} ({len(items)})", ""]
        if not items:
            out.append(f"None: {empty_recommendation_reason(report, category)}.")
        for i, rec in enumerate(items, 1):
            out.append(f"{i}. {rec.text}. _Evidence: {rec.evidence}._")
        out.append("")
    return "\n".join(out).rstrip() + "\n"
