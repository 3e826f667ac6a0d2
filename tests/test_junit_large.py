"""Files larger than one reader batch (1024 testcases): order, reruns, slowest and counts must not depend on it."""

from __future__ import annotations

import random
from pathlib import Path

from itest_mcp.tools.junit import parse_junit_files
from itest_mcp.tools.models import Outcome


def _case(cls: str, name: str, time: str, body: str = "") -> str:
    attrs = f'classname="{cls}" name="{name}"' + (f' time="{time}"' if time else "")
    return f"<testcase {attrs}>{body}</testcase>\n" if body else f"<testcase {attrs}/>\n"


def _write(path: Path, suites: list[tuple[str, list[str]]]) -> Path:
    parts = ['<?xml version="1.0" encoding="UTF-8"?>\n<testsuites>\n']
    for name, cases in suites:
        parts.append(f'<testsuite name="{name}">\n{"".join(cases)}</testsuite>\n')
    parts.append("</testsuites>\n")
    path.write_text("".join(parts), encoding="utf-8")
    return path


def test_order_outcomes_and_reruns_across_batches(tmp_path: Path) -> None:
    """Failures in the middle of batches keep their place; a rerun in a later batch merges into the first."""
    rnd = random.Random(7)
    cases, expected = [], []
    for i in range(3000):
        cls = f"pkg.C{i // 700}"  # class changes inside batches: the per-class path
        if i % 97 == 5:
            cases.append(_case(cls, f"t{i}", "0.5", f'<failure message="boom {i}">x_test.go:{i}: boom</failure>'))
            expected.append((f"t{i}", Outcome.FAILED))
        elif i % 211 == 3:
            cases.append(_case(cls, f"t{i}", "0.1", "<skipped/>"))
            expected.append((f"t{i}", Outcome.SKIPPED))
        else:
            cases.append(_case(cls, f"t{i}", f"{rnd.random():.3f}"))
            expected.append((f"t{i}", Outcome.PASSED))
    # a rerun of t5 (failed) that passes, 2900 testcases later, and a duplicate inside one batch
    cases.append(_case("pkg.C0", "t5", "0.2"))
    cases.append(_case("pkg.C4", "t2999", "0.2"))
    result = parse_junit_files([_write(tmp_path / "big.xml", [("s", cases)])])
    tests = result.report.tests
    assert [t.name for t in tests] == [name for name, _ in expected]  # document order, one entry per test
    by_name = {t.name: t for t in tests}
    assert by_name["t5"].outcome is Outcome.FLAKY
    assert [a.outcome for a in by_name["t5"].attempts] == [Outcome.FAILED, Outcome.PASSED]
    assert by_name["t2999"].outcome is Outcome.PASSED and len(by_name["t2999"].attempts) == 2
    outcomes = {name: outcome for name, outcome in expected}
    outcomes["t5"] = Outcome.FLAKY
    assert [t.outcome for t in tests] == [outcomes[t.name] for t in tests]
    failed = [name for name, outcome in outcomes.items() if outcome is Outcome.FAILED]
    assert [f.test for f in result.report.failures] == failed
    assert result.report.failures[0].location is not None and result.report.failures[0].location.line == 102
    totals = result.report.totals
    assert (totals.tests, totals.attempts, totals.flaky) == (3000, 3002, 1)
    assert result.files[0].tests == 3002


def test_slowest_matches_a_full_sort(tmp_path: Path) -> None:
    """The running candidate set gives exactly the 10 largest durations, ties to the earliest test."""
    rnd = random.Random(3)
    cases = []
    for i in range(5000):
        # few distinct values: many ties, including ties at the 10th place; some testcases have no time
        time = "" if i % 13 == 0 else rnd.choice(["0.000", "0.100", "0.999", "1.000", "2.5", "0.250"])
        cases.append(_case(f"pkg.C{i % 3}", f"t{i}", time))
    cases.append(_case("pkg.C0", "t4", "9.0"))  # a rerun makes an early test the slowest
    result = parse_junit_files([_write(tmp_path / "ties.xml", [("a", cases[:2500]), ("b", cases[2500:])])])
    tests = result.report.tests
    ranked = sorted(range(len(tests)), key=lambda i: (-tests[i].duration_s, i))
    expected = [(tests[i].name, tests[i].duration_s) for i in ranked[:10] if tests[i].duration_s > 0]
    assert [(t.name, t.duration_s) for t in result.report.slowest] == expected
    assert result.report.slowest[0].name == "t4"


def test_corrupt_after_many_testcases_counts_them_all(tmp_path: Path) -> None:
    cases = [_case("pkg", f"t{i}", "0.01") for i in range(1500)]
    path = _write(tmp_path / "cut.xml", [("s", cases)])
    path.write_text(path.read_text(encoding="utf-8")[:-20], encoding="utf-8")  # cut inside the closing tags
    result = parse_junit_files([path])
    assert result.files[0].error is not None
    assert "the 1500 testcases before it are included" in result.files[0].error
    assert result.report.totals.tests == 1500


def test_unnamed_testcases_numbered_in_document_order(tmp_path: Path) -> None:
    cases = ['<testcase classname="c"/>\n', '<testcase classname="c"><failure>f</failure></testcase>\n']
    cases += ['<testcase classname="c"/>\n']
    result = parse_junit_files([_write(tmp_path / "unnamed.xml", [("s", cases)])])
    assert [t.name for t in result.report.tests] == [f"(unnamed testcase {i})" for i in (1, 2, 3)]
    assert result.report.failures[0].test == "(unnamed testcase 2)"


def test_max_failures_keeps_counts(tmp_path: Path) -> None:
    cases = [_case("pkg", f"t{i}", "0.1", f"<failure>x_test.go:{i + 1}: no</failure>") for i in range(120)]
    result = parse_junit_files([_write(tmp_path / "many.xml", [("s", cases)])], max_failures=50, keep_tests=False)
    assert result.report.totals.failed == 120
    assert len(result.report.failures) == 50 and result.failures_omitted == 70
    assert [f.test for f in result.report.failures] == [f"t{i}" for i in range(50)]
    assert result.report.failures[49].location is not None and result.report.failures[49].location.line == 50
