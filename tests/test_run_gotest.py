"""Golden tests of the pure `go test -json` parser, the text fallback and the JUnit writer."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from itest_mcp.tools.gotest import GoTestParser, verdict
from itest_mcp.tools.junit_write import clean_xml_text, write_junit
from itest_mcp.tools.models import Outcome
from itest_mcp.tools.textparse import TextParser

GOLDEN = Path(__file__).parent / "fixtures" / "run" / "golden"
MODULES = {
    "demo_all.jsonl": "example.com/demo",
    "hang_panic.jsonl": "example.com/hang",
    "build_fail.jsonl": "example.com/cerr",
    "build_fail_plain.txt": "example.com/cerr",
    "old_panic.jsonl": "example.com/p",
}


def parse(name: str) -> GoTestParser:
    parser = GoTestParser(module_path=MODULES[name], root="/ROOT")
    with (GOLDEN / name).open("rb") as handle:
        for line in handle:
            parser.feed(line)
    return parser


def snapshot(parser: GoTestParser) -> dict[str, object]:
    report = parser.report()
    return {
        "report": report.model_dump(mode="json"),
        "tests": [t.model_dump(mode="json") for t in report.tests],
    }


@pytest.mark.parametrize("name", sorted(MODULES))
def test_golden_streams(name: str) -> None:
    got = snapshot(parse(name))
    expected_file = GOLDEN / (name.rsplit(".", 1)[0] + ".expected.json")
    if os.environ.get("ITEST_UPDATE_GOLDEN") or not expected_file.exists():
        expected_file.write_text(json.dumps(got, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    assert got == json.loads(expected_file.read_text(encoding="utf-8"))


def test_demo_stream_failure_race_and_slowest() -> None:
    report = parse("demo_all.jsonl").report()
    by_test = {f.test: f for f in report.failures}
    assert str(by_test["TestAPIClientDefaultBranch"].location) == "test/integration/api_client_test.go:98"
    assert by_test["TestAPIClientDefaultBranch"].message == 'default branch = "master", want "main"'
    assert by_test["TestConcurrentSync"].kind == "data-race"
    assert [r.test for r in report.races] == ["TestConcurrentSync"]
    assert "internal/reposync/sync.go:42" in [str(loc) for loc in report.races[0].locations]
    assert report.slowest[0].name == "TestSlowPagination"
    assert report.totals.tests == 11 and report.totals.failed == 3


def test_timeout_panic_attributed_to_hung_test() -> None:
    report = parse("hang_panic.jsonl").report()
    hang = next(f for f in report.failures if f.test == "TestHang")
    assert hang.kind == "timeout"
    assert "test timed out after 1s" in hang.message
    assert str(hang.location) == "h_test.go:6"
    panics = {p.test: p for p in report.panics}
    assert str(panics["TestPanics"].location) == "p/p_test.go:8"
    assert "nil map" in panics["TestPanics"].message


@pytest.mark.parametrize("name", ["build_fail.jsonl", "build_fail_plain.txt"])
def test_build_failure_is_reported_with_compiler_position(name: str) -> None:
    report = parse(name).report()
    assert report.build_errors, "a compile error must never look like zero tests passed"
    error = report.build_errors[0]
    assert error.package == "example.com/cerr"
    assert str(error.location) == "a_test.go:6"
    assert "cannot use" in error.message


def test_panic_without_test_field_goes_to_running_test_and_bad_utf8_is_kept() -> None:
    parser = parse("old_panic.jsonl")
    report = parser.report()
    boom = next(f for f in report.failures if f.test == "TestBoom")
    assert boom.kind == "panic"
    assert str(boom.location) == "p/boom_test.go:12"
    assert "\ufffd" in parser.stray_output()


def test_repeated_runs_become_attempts_and_verdicts() -> None:
    parser = GoTestParser()
    for outcome in ("fail", "pass"):
        parser.feed(json.dumps({"Action": "run", "Package": "p", "Test": "TestF"}))
        parser.feed(json.dumps({"Action": outcome, "Package": "p", "Test": "TestF", "Elapsed": 0.1}))
    report = parser.report()
    assert report.tests[0].outcome is Outcome.FLAKY
    assert len(report.tests[0].attempts) == 2
    assert verdict([Outcome.FAILED, Outcome.FAILED]) is Outcome.FAILED
    assert verdict([Outcome.SKIPPED]) is Outcome.SKIPPED


def test_huge_output_is_bounded_per_test() -> None:
    parser = GoTestParser()
    parser.feed(json.dumps({"Action": "run", "Package": "p", "Test": "TestBig"}))
    chunk = json.dumps({"Action": "output", "Package": "p", "Test": "TestBig", "Output": "y" * 100_000 + "\n"})
    for _ in range(200):
        parser.feed(chunk)
    parser.feed(json.dumps({"Action": "fail", "Package": "p", "Test": "TestBig", "Elapsed": 1}))
    failure = parser.report().failures[0]
    assert len(failure.excerpt) <= 2000


def test_text_fallback_go_and_pytest() -> None:
    text = TextParser()
    for line in [
        "--- FAIL: TestAPIClientDefaultBranch (0.00s)",
        '    api_client_test.go:98: default branch = "master", want "main"',
        "FAIL\texample.com/demo/test/integration\t2.1s",
        "tests/test_x.py::test_ok PASSED   [ 50%]",
        "tests/test_x.py::test_bad FAILED  [100%]",
        "FAILED tests/test_x.py::test_bad - assert 1 == 2",
    ]:
        text.feed(line + "\n")
    report = text.report()
    assert report.source.value == "text"
    failures = {f.test: f for f in report.failures}
    assert str(failures["TestAPIClientDefaultBranch"].location) == "api_client_test.go:98"
    assert failures["TestAPIClientDefaultBranch"].classname == "example.com/demo/test/integration"
    assert failures["test_bad"].message == "assert 1 == 2"
    assert report.totals.passed == 1 and report.totals.failed == 2


def test_junit_writer_strips_forbidden_characters(tmp_path: Path) -> None:
    from lxml import etree

    parser = GoTestParser()
    parser.feed(json.dumps({"Action": "run", "Package": "p", "Test": "TestCtl"}))
    nasty = "bad \x00\x01\x1b[31m <&> \ud800 \ufffe end\n"
    parser.feed(json.dumps({"Action": "output", "Package": "p", "Test": "TestCtl", "Output": nasty}))
    parser.feed(json.dumps({"Action": "fail", "Package": "p", "Test": "TestCtl", "Elapsed": 0}))
    path = write_junit(parser.report(), tmp_path / "junit.xml")
    tree = etree.parse(str(path))
    failure = tree.find(".//failure")
    assert failure is not None and "<&>" in (failure.text or "")
    assert clean_xml_text("a\x00b\x1bc") == "abc"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_results_built_without_validation_equal_validated_ones(name: str) -> None:
    from itest_mcp.tools.gotest import _TRUSTED
    from itest_mcp.tools.models import Attempt, TestResult

    # The fast path is in use (a field added to these models would switch it off, and this says so).
    assert _TRUSTED == {Attempt, TestResult}
    tests = parse(name).report().tests
    for test in tests:
        validated = TestResult.model_validate(test.model_dump())
        assert validated == test
        assert validated.model_dump_json() == test.model_dump_json()
        assert repr(validated) == repr(test)
        assert validated.model_fields_set == test.model_fields_set


def test_long_stream_with_reruns_and_a_skip() -> None:
    """Attempts accumulate per test (-count and reruns); a report taken midway does not change afterwards."""
    parser = GoTestParser(module_path="example.com/m")

    def event(action: str, test: str, **extra: object) -> bytes:
        return json.dumps({"Action": action, "Package": "example.com/m", "Test": test, **extra}).encode() + b"\n"

    parser.feed(event("run", "TestA"))
    parser.feed(event("output", "TestA", Output="    a_test.go:7: boom\n"))
    parser.feed(event("fail", "TestA", Elapsed=0.5))
    parser.feed(event("run", "TestB"))
    parser.feed(event("output", "TestB", Output="    b_test.go:3: needs docker\n"))
    parser.feed(event("skip", "TestB", Elapsed=0))
    first = parser.report()
    parser.feed(event("run", "TestA"))
    parser.feed(event("pass", "TestA", Elapsed=0.25))
    second = parser.report()
    a1, b1 = first.tests
    assert a1.outcome is Outcome.FAILED and len(a1.attempts) == 1
    assert a1.location is not None and str(a1.location) == "a_test.go:7" and a1.message == "boom"
    assert b1.outcome is Outcome.SKIPPED and b1.message == "needs docker" and b1.duration_s == 0.0
    a2 = second.tests[0]
    assert a2.outcome is Outcome.FLAKY and [a.outcome for a in a2.attempts] == [Outcome.FAILED, Outcome.PASSED]
    assert a2.duration_s == 0.5 and isinstance(a2.attempts[1].duration_s, float)
    assert second.totals.flaky == 1 and second.totals.attempts == 3


def test_results_are_usable_in_a_fresh_process_with_deferred_model_build() -> None:
    """Models defer building (start-up time); results built without validation must still serialize."""
    import subprocess
    import sys

    code = (
        "import json\n"
        "from itest_mcp.tools.gotest import GoTestParser\n"
        "from itest_mcp.tools.models import TestResult\n"
        "p = GoTestParser(module_path='m')\n"
        "p.feed(json.dumps({'Action': 'run', 'Package': 'm', 'Test': 'T'}).encode())\n"
        "p.feed(json.dumps({'Action': 'pass', 'Package': 'm', 'Test': 'T', 'Elapsed': 0.1}).encode())\n"
        "t = p.report().tests[0]\n"
        "print(TestResult.__pydantic_serializer__.to_json(t).decode())\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["attempts"] == [{"outcome": "passed", "duration_s": 0.1, "message": None}]
