"""The report's data model: the four sections and the report that holds them."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from .flaky import FlakyReport
from .models import Model, Outcome, RunStatus, Totals
from .report_causes import Cause

SECTIONS = ("Test Execution Summary", "Critical Findings", "Coverage Analysis", "Recommendations")


class PhaseResult(Model):
    """One run in the summary table."""

    run_id: str
    phase: str
    status: RunStatus
    started_at: datetime
    duration_s: float
    commit: str | None = None
    dirty: bool = False
    totals: Totals
    source: str
    exit_code: int | None = None


class SlowTestEntry(Model):
    """One of the slowest tests of the selected runs."""

    name: str
    classname: str = ""
    phase: str
    run_id: str
    duration_s: float
    share_of_phase: float | None = None
    subtest: str | None = None
    """Its subtest that explains most of its time, in words (subtests of a listed parent are not listed apart)."""


class ExecutionSummary(Model):
    """Test Execution Summary: phases, total time, pass/fail statistics."""

    runs: list[PhaseResult] = Field(default_factory=list)
    total_duration_s: float = 0.0
    totals: Totals = Field(default_factory=Totals)
    pass_rate: float | None = None
    """Passed (flaky included) over tests that ran (skipped excluded)."""
    slowest: list[SlowTestEntry] = Field(default_factory=list)
    covered: list[str] = Field(default_factory=list)
    """Recommended phases not run on their own because a run of a wider phase ran all their tests."""
    github: str | None = None
    """The GitHub API validation that ran with these results, in one line (its problems are findings)."""


class FailureFinding(Model):
    """A failed test, build error or race with its cause class and the data behind it."""

    test: str
    classname: str = ""
    phase: str
    run_id: str
    outcome: Outcome = Outcome.FAILED
    cause: Cause
    cause_evidence: str
    location: str | None = None
    message: str = ""
    excerpt: str = ""
    attempts: int = 1
    history: str | None = None
    """What history says about this test (broken since, flaky rate)."""
    also_failed_in: list[str] = Field(default_factory=list)
    """The other selected runs (any phase) in which it failed too; the finding shows `run_id`'s data."""
    phases: list[str] = Field(default_factory=list)
    """Every phase of the selected runs in which it failed, in run order (one test, one finding)."""
    seen_in: list[str] = Field(default_factory=list)
    """Every selected run in which it failed, in run order."""


class Finding(Model):
    """A performance, environment or input problem, with where the data came from."""

    category: str
    """"performance", "environment" or "input"."""
    title: str
    detail: str = ""
    run_id: str | None = None
    source: str = ""
    test: str | None = None
    phase: str | None = None


class CriticalFindings(Model):
    """Critical Findings: failures with cause classes, performance issues, environment problems."""

    failures: list[FailureFinding] = Field(default_factory=list)
    failures_omitted: int = 0
    causes: dict[str, int] = Field(default_factory=dict)
    performance: list[Finding] = Field(default_factory=list)
    environment: list[Finding] = Field(default_factory=list)


class CoverageFile(Model):
    """A file or package with its coverage."""

    name: str
    percent: float


class CoverageGapEntry(Model):
    """Lines a coverage result marks as not covered."""

    file: str
    lines: str = ""
    detail: str = ""


class TestIdea(Model):
    """A test to add, with the coverage data behind it."""

    __test__ = False

    text: str
    evidence: str


class CoverageAnalysis(Model):
    """Coverage Analysis: well-covered areas, gaps, scenarios the suites never exercise."""

    source: str | None = None
    total_percent: float | None = None
    total_lines: str | None = None
    """"covered/measured over N files"."""
    changed_lines_percent: float | None = None
    changed_lines: str | None = None
    well_covered: list[CoverageFile] = Field(default_factory=list)
    gaps: list[CoverageGapEntry] = Field(default_factory=list)
    unexercised: list[str] = Field(default_factory=list)
    test_ideas: list[TestIdea] = Field(default_factory=list)
    """New tests the coverage result calls for (its ranked gaps and scenario suggestions)."""
    notes: list[str] = Field(default_factory=list)


class Recommendation(Model):
    """One action, with the data that calls for it."""

    category: str
    """"fix", "reliability", "performance" or "new-test"."""
    text: str
    evidence: str


class ReportFiles(Model):
    """Where the report was saved (project-relative)."""

    json_path: str | None = None
    markdown: str | None = None
    html: str | None = None
    out: str | None = None


class Report(Model):
    """The four-section report over a set of runs."""

    report_id: str
    created_at: datetime
    project_root: str
    commit: str | None = None
    run_ids: list[str]
    selection: str
    """Why these runs (given, since the last report, of the current commit, latest per phase)."""
    summary: ExecutionSummary
    findings: CriticalFindings
    coverage: CoverageAnalysis
    recommendations: list[Recommendation] = Field(default_factory=list)
    history: FlakyReport | None = None
    files: ReportFiles = Field(default_factory=ReportFiles)
