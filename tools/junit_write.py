"""Write a JUnit XML file from a `TestReport` (the run folder's `junit.xml` for every run).

Streams test by test, so a 100k-test report never becomes one big tree. Text
from test output is untrusted: characters XML 1.0 forbids (NUL, most C0
controls, lone surrogates, U+FFFE/FFFF) are dropped, the rest is escaped.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO
from xml.sax.saxutils import escape, quoteattr

from .models import Failure, Outcome, TestReport, TestResult

_FORBIDDEN = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def clean_xml_text(text: str) -> str:
    """`text` without the characters XML 1.0 cannot hold."""
    return _FORBIDDEN.sub("", text)


_SPECIAL = re.compile("[^\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]|[&<>\"']")
"""A character that needs escaping or dropping; most names have none, so they skip the slow path."""


def _attr(value: str) -> str:
    if _SPECIAL.search(value) is None:
        return f'"{value}"'
    return quoteattr(clean_xml_text(value))


def _text(value: str) -> str:
    return escape(clean_xml_text(value))


def write_junit(report: TestReport, path: Path, *, name: str = "itest") -> Path:
    """Write `report` as JUnit XML at `path` (one <testsuite> per package/module) and return the path."""
    failures: dict[tuple[str, str], Failure] = {(f.classname, f.test): f for f in report.failures}
    suites: dict[str, list[TestResult]] = {}
    for test in report.tests:
        suites.setdefault(test.classname or name, []).append(test)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", encoding="utf-8") as out:
        totals = report.totals
        out.write('<?xml version="1.0" encoding="UTF-8"?>\n')
        out.write(
            f'<testsuites name={_attr(name)} tests="{totals.tests}" failures="{totals.failed}" '
            f'errors="{totals.errors}" skipped="{totals.skipped}">\n'
        )
        for suite_name, tests in suites.items():
            _write_suite(out, suite_name, tests, failures)
        # Packages that failed without a test (build errors, crashes) still appear, as an erroring case.
        for build in report.build_errors:
            out.write(f'  <testsuite name={_attr(build.package)} tests="1" failures="0" errors="1" skipped="0">\n')
            where = f" ({build.location})" if build.location else ""
            out.write(
                f'    <testcase name="[build]" classname={_attr(build.package)} time="0">\n'
                f'      <error message={_attr("build failed" + where)} type="build">{_text(build.message)}</error>\n'
                "    </testcase>\n  </testsuite>\n"
            )
        for failure in report.failures:
            if failure.kind == "package":
                out.write(f'  <testsuite name={_attr(failure.classname)} tests="1" failures="0" errors="1">\n')
                out.write(
                    f'    <testcase name={_attr(failure.test)} classname={_attr(failure.classname)} time="0">\n'
                    f"      <error message={_attr(failure.message)}>{_text(failure.excerpt)}</error>\n"
                    "    </testcase>\n  </testsuite>\n"
                )
        out.write("</testsuites>\n")
    tmp.replace(path)
    return path


def _write_suite(
    out: TextIO, suite_name: str, tests: Iterable[TestResult], failures: dict[tuple[str, str], Failure]
) -> None:
    items = list(tests)
    counts = Counter(t.outcome for t in items)
    duration = sum(t.duration_s for t in items if "/" not in t.name)
    # Written in batches: one write() call per test was a visible share of a 2,000-test run.
    parts: list[str] = []
    write = parts.append
    classnames: dict[str, str] = {}
    write(
        f'  <testsuite name={_attr(suite_name)} tests="{len(items)}" failures="{counts[Outcome.FAILED]}" '
        f'errors="{counts[Outcome.ERROR]}" skipped="{counts[Outcome.SKIPPED]}" time="{duration:.3f}">\n'
    )
    for test in items:
        if len(parts) >= 2000:
            out.write("".join(parts))
            parts.clear()
        classname = classnames.get(test.classname)
        if classname is None:
            classname = classnames[test.classname] = _attr(test.classname)
        attrs = f'name={_attr(test.name)} classname={classname} time="{test.duration_s:.3f}"'
        if test.location is not None:
            attrs += f" file={_attr(test.location.file)}"
            if test.location.line is not None:
                attrs += f' line="{test.location.line}"'
        failure = failures.get((test.classname, test.name))
        message = (failure.message if failure else test.message) or ""
        body = failure.excerpt if failure else ""
        if test.outcome is Outcome.PASSED:
            write(f"    <testcase {attrs}/>\n")
        elif test.outcome is Outcome.SKIPPED:
            write(f"    <testcase {attrs}>\n      <skipped message={_attr(message)}/>\n    </testcase>\n")
        elif test.outcome is Outcome.FLAKY:
            failed = [a for a in test.attempts if a.outcome in (Outcome.FAILED, Outcome.ERROR)]
            write(f"    <testcase {attrs}>\n")
            for attempt in failed:
                write(f"      <flakyFailure message={_attr(attempt.message or 'failed')}/>\n")
            write("    </testcase>\n")
        else:
            tag = "error" if test.outcome is Outcome.ERROR else "failure"
            kind = f" type={_attr(failure.kind)}" if failure and failure.kind else ""
            write(f"    <testcase {attrs}>\n      <{tag} message={_attr(message)}{kind}>{_text(body)}</{tag}>\n")
            write("    </testcase>\n")
    write("  </testsuite>\n")
    out.write("".join(parts))
