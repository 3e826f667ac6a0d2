"""The one result model every runner and parser produces and every consumer reads.

`go test -json` (gotest.py), every JUnit dialect (junit.py) and the text fallback
all fill a `TestReport`; `run_phase` wraps it in a `PhaseRun`; history stores it;
the report reads it. Add fields with defaults; never fork a second copy.

Full per-test lists (`TestReport.tests`) are excluded from serialisation: tool
results stay compact, and the complete data stays in the run folder (JUnit, log)
and in history, where consumers read it from the Python object.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

EXCERPT_LIMIT = 2000
"""Characters of failure output kept in a result; the full text stays in the run folder."""

SLOWEST_LIMIT = 10


class Model(BaseModel):
    """Base for every boundary model: unknown fields are errors, not silently dropped."""

    # defer_build: a model's validator is built on first use, not at import. With the server's
    # schema cache nothing uses most models at start-up: importing our modules took 246 -> 152 ms
    # (min of 9 starts; medians 452 -> 300 under load). See server/schema_cache.py.
    model_config = ConfigDict(extra="forbid", defer_build=True)


class Outcome(StrEnum):
    """The outcome of one test (after all attempts) or of one attempt."""

    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"
    SKIPPED = "skipped"
    FLAKY = "flaky"


class RunStatus(StrEnum):
    """The status of a whole phase run."""

    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"
    TIMEOUT = "timeout"
    CANCELLED = "cancelled"


class CountsSource(StrEnum):
    """Where a run's test counts come from; text counts are the least precise."""

    GO_JSON = "go-json"
    JUNIT = "junit"
    PYTEST = "pytest"
    TEXT = "text"
    NONE = "none"


class Location(Model):
    """A place in a source file, repo-relative where it could be mapped."""

    file: str
    line: int | None = None

    def __str__(self) -> str:
        return f"{self.file}:{self.line}" if self.line is not None else self.file


class Attempt(Model):
    """One execution of one test."""

    outcome: Outcome
    duration_s: float = 0.0
    message: str | None = None


class TestResult(Model):
    """One test with all its attempts; `outcome` is the verdict over the attempts."""

    __test__ = False  # not a pytest test class

    name: str
    classname: str = ""
    """Go package import path, JUnit classname, or pytest module path."""
    suite: str | None = None
    outcome: Outcome
    duration_s: float = 0.0
    attempts: list[Attempt] = Field(default_factory=list)
    location: Location | None = None
    message: str | None = None

    @property
    def key(self) -> str:
        """The identity that merges reruns: class (package) and name."""
        return f"{self.classname}::{self.name}" if self.classname else self.name


class Failure(Model):
    """A failed or erroring test with what an engineer needs to act on it."""

    test: str
    classname: str = ""
    outcome: Outcome = Outcome.FAILED
    message: str = ""
    location: Location | None = None
    excerpt: str = ""
    """A bounded tail of the test's output or failure text (see EXCERPT_LIMIT)."""
    attempts: int = 1
    kind: str | None = None
    """A cause class when the parser knows it: assertion, panic, data-race, timeout, build, ..."""


class DataRace(Model):
    """A `WARNING: DATA RACE` block, attributed to the test that was running."""

    test: str | None = None
    package: str = ""
    locations: list[Location] = Field(default_factory=list)
    excerpt: str = ""


class Panic(Model):
    """A `panic:` in a test binary, attributed to the running test."""

    test: str | None = None
    package: str = ""
    message: str = ""
    location: Location | None = None
    excerpt: str = ""


class BuildError(Model):
    """A package that did not compile: the compiler's message and position."""

    package: str = ""
    message: str
    location: Location | None = None


class TestTiming(Model):
    """One entry of the slowest-tests list."""

    __test__ = False

    name: str
    classname: str = ""
    duration_s: float


class Totals(Model):
    """Counts of tests (not attempts) by outcome, plus the number of attempts."""

    tests: int = 0
    passed: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0
    flaky: int = 0
    attempts: int = 0


class SuiteSummary(Model):
    """Per-suite (JUnit testsuite / Go package / pytest module) figures."""

    name: str
    file: str | None = None
    tests: int = 0
    passed: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0
    flaky: int = 0
    duration_s: float = 0.0


class TestReport(Model):
    """Test outcomes from any source: go test -json, JUnit, pytest, text."""

    __test__ = False

    source: CountsSource = CountsSource.NONE
    totals: Totals = Field(default_factory=Totals)
    suites: list[SuiteSummary] = Field(default_factory=list)
    failures: list[Failure] = Field(default_factory=list)
    slowest: list[TestTiming] = Field(default_factory=list)
    races: list[DataRace] = Field(default_factory=list)
    panics: list[Panic] = Field(default_factory=list)
    build_errors: list[BuildError] = Field(default_factory=list)
    tests: list[TestResult] = Field(default_factory=list, exclude=True)
    """Every test; kept off the wire (see the module docstring)."""


class Resources(Model):
    """What the phase's whole process tree cost."""

    wall_s: float = 0.0
    cpu_user_s: float = 0.0
    cpu_system_s: float = 0.0
    peak_rss_mb: float | None = None
    """Peak resident set of the largest process in the tree."""


class Artifacts(Model):
    """Files a run left in its run folder (repo-relative paths)."""

    run_dir: str
    log: str | None = None
    junit: str | None = None
    coverage: list[str] = Field(default_factory=list)


class PhaseRun(Model):
    """One run of one phase: the record every consumer (tool, CLI, history, report) reads."""

    run_id: str
    phase: str
    argv: list[str]
    commit: str | None = None
    dirty: bool = False
    status: RunStatus
    exit_code: int | None = None
    started_at: datetime
    ended_at: datetime | None = None
    duration_s: float = 0.0
    timeout_s: float | None = None
    """The limit the run was given (None in runs recorded before it was kept)."""
    report: TestReport = Field(default_factory=TestReport)
    resources: Resources = Field(default_factory=Resources)
    artifacts: Artifacts
    notes: list[str] = Field(default_factory=list)
    """Plain-language caveats: counts from text, no tests ran, tool missing, partial on cancel."""
    fault_profile: str | None = None


def excerpt(text: str, limit: int = EXCERPT_LIMIT) -> str:
    """The tail of `text` within `limit` characters, marked when cut (failures print their cause last)."""
    if len(text) <= limit:
        return text
    return "…" + text[-(limit - 1) :]
