"""Bad and hostile input: every case gives a clear message naming the file, and never stops the other files."""

from __future__ import annotations

import resource
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from itest_mcp.tools.errors import NotFoundError, PathOutsideRepoError
from itest_mcp.tools.junit import parse_junit_files, parse_junit_paths
from itest_mcp.tools.models import Outcome
from itest_mcp.tools.repo import open_project

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "junit"

GOOD = """<?xml version="1.0"?>
<testsuites><testsuite name="good" tests="2">
<testcase classname="pkg" name="ok" time="0.1"/>
<testcase classname="pkg" name="bad" time="0.2"><failure message="boom">x_test.go:3: boom</failure></testcase>
</testsuite></testsuites>
"""

BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<testsuites><testsuite name="&lol9;"><testcase name="&lol9;"/></testsuite></testsuites>
"""

XXE = """<?xml version="1.0"?>
<!DOCTYPE testsuites [ <!ENTITY xxe SYSTEM "file:///etc/passwd"> ]>
<testsuites><testsuite name="x"><testcase name="t"><failure message="&xxe;"/></testcase></testsuite></testsuites>
"""


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str | bytes], Path]:
    def _write(name: str, content: str | bytes) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return path

    return _write


def test_corrupt_file_names_line_and_column_and_others_still_read(write: Callable[..., Path], tmp_path: Path) -> None:
    corrupt = write("corrupt.xml", GOOD.replace("</testsuite></testsuites>", "<testcase name='cut"))
    good = write("good.xml", GOOD)
    result = parse_junit_files([corrupt, good], root=tmp_path)
    assert result.files[0].error is not None
    message = result.files[0].error
    assert message == (
        "corrupt.xml: not well-formed XML at line 6, column 1: AttValue: ' expected; "
        "the 2 testcases before it are included; the file is corrupt or was cut off, regenerate it"
    )
    assert "regenerate" in message
    assert result.errors == [message]
    assert result.files[1].error is None and result.files[1].tests == 2
    # the two complete testcases before the fault are kept, and merged with the good file's (same names)
    assert result.report.totals.tests == 2
    assert result.report.totals.attempts == 4


def test_non_junit_root_is_named(write: Callable[..., Path], tmp_path: Path) -> None:
    pom = write(
        "pom.xml", '<?xml version="1.0"?>\n<!-- maven -->\n<project xmlns="http://maven.apache.org/POM/4.0.0"/>'
    )
    result = parse_junit_files([pom], root=tmp_path)
    assert result.errors == [
        "pom.xml: not a JUnit report: the root element is <project>, expected <testsuites> or <testsuite>; "
        "pass only the JUnit XML files a test runner wrote"
    ]


@pytest.mark.parametrize(("content", "what"), [(b"", "empty (0 bytes)"), (b"  \n\n", "blank (whitespace only)")])
def test_empty_file(write: Callable[..., Path], tmp_path: Path, content: bytes, what: str) -> None:
    result = parse_junit_files([write("TEST-empty.xml", content), write("good.xml", GOOD)], root=tmp_path)
    expected = f"TEST-empty.xml: the file is {what}; the test run probably died before writing its report"
    assert result.files[0].error == expected
    assert result.report.totals.tests == 2


def test_missing_file_and_folder(tmp_path: Path, write: Callable[..., Path]) -> None:
    (tmp_path / "reports").mkdir()
    result = parse_junit_files([tmp_path / "nope.xml", tmp_path / "reports", write("good.xml", GOOD)], root=tmp_path)
    assert result.files[0].error == "nope.xml: file not found; check the path (the run may not have written it)"
    assert result.files[1].error == "reports: is a folder, not a file; pass a glob like 'reports/*.xml'"
    assert result.report.totals.failed == 1


def test_not_xml_at_all(write: Callable[..., Path], tmp_path: Path) -> None:
    result = parse_junit_files([write("out.xml", "PASS\nok  \tgithub.com/x\t0.1s\n")], root=tmp_path)
    assert result.errors == [
        "out.xml: not XML: expected '<' at the start of the document, found 'PASS'; "
        "pass the JUnit XML files a test runner wrote"
    ]


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_billion_laughs_refused_fast(write: Callable[..., Path], tmp_path: Path) -> None:
    path = write("lolz.xml", BILLION_LAUGHS)
    before = _peak_rss_mb()
    start = time.perf_counter()
    result = parse_junit_files([path], root=tmp_path)
    assert time.perf_counter() - start < 0.2
    assert _peak_rss_mb() - before < 50
    assert result.errors[0].startswith("lolz.xml: refused: the DOCTYPE declares entities")
    assert "entity expansion" in result.errors[0]
    assert result.report.totals.tests == 0


def test_xxe_refused_and_nothing_read(write: Callable[..., Path], tmp_path: Path) -> None:
    result = parse_junit_files([write("xxe.xml", XXE)], root=tmp_path)
    assert "external entities (XXE)" in result.errors[0]
    assert "root:" not in result.model_dump_json()


def test_doctype_without_entities_and_doctype_in_comment_are_fine(write: Callable[..., Path], tmp_path: Path) -> None:
    plain = write("plain.xml", GOOD.replace("<testsuites>", "<!DOCTYPE testsuites>\n<testsuites>", 1))
    comment = write(
        "comment.xml", GOOD.replace("<testsuites>", '<!-- <!DOCTYPE x [<!ENTITY a "b">]> -->\n<testsuites>', 1)
    )
    result = parse_junit_files([plain, comment], root=tmp_path)
    assert result.errors == []
    assert result.report.totals.attempts == 4


def test_forbidden_character_reference_split_across_read_chunks(write: Callable[..., Path], tmp_path: Path) -> None:
    """The byte filter holds back a tail so a reference cut by a chunk boundary is still seen whole."""
    head = '<?xml version="1.0"?>\n<testsuites><testsuite name="s"><testcase name="t"><failure message="m">'
    paths = []
    for shift in range(0, 8):
        pad = "x" * (65536 - len(head) - shift)
        body = head + pad + "&#x1B;[0m \x1b é</failure></testcase></testsuite></testsuites>"
        paths.append(write(f"split{shift}.xml", body))
    result = parse_junit_files(paths, root=tmp_path)
    assert result.errors == []
    assert all(f.notes and "replaced with U+FFFD" in f.notes[0] for f in result.files)
    assert result.report.failures[0].excerpt.endswith("\ufffd[0m \ufffd é")


def test_utf16_file(write: Callable[..., Path], tmp_path: Path) -> None:
    text = GOOD.replace('<?xml version="1.0"?>', '<?xml version="1.0" encoding="UTF-16"?>')
    result = parse_junit_files([write("utf16.xml", text.encode("utf-16"))], root=tmp_path)
    assert result.errors == []
    assert result.report.totals.failed == 1


def test_huge_output_is_read_and_bounded(write: Callable[..., Path], tmp_path: Path) -> None:
    """A 12 MB <system-out> (over libxml2's 10 MB default text limit) reads; the excerpt stays bounded."""
    out = ("log line " * 20 + "\n") * 70_000
    xml = (
        '<?xml version="1.0"?><testsuites><testsuite name="s"><testcase name="t" classname="c">'
        f'<failure message="m">x_test.go:5: boom</failure><system-out>{out}THE END</system-out>'
        "</testcase></testsuite></testsuites>"
    )
    result = parse_junit_files([write("big.xml", xml)], root=tmp_path)
    assert result.errors == []
    failure = result.report.failures[0]
    assert len(failure.excerpt) <= 2000
    assert failure.excerpt.endswith("THE END")
    assert failure.excerpt.startswith("x_test.go:5: boom")


def test_reruns_across_files_merge_into_one_test(write: Callable[..., Path], tmp_path: Path) -> None:
    first = write("run1.xml", GOOD)
    rerun = write(
        "run2.xml",
        '<testsuites><testsuite name="good"><testcase classname="pkg" name="bad" time="0.3"/></testsuite></testsuites>',
    )
    result = parse_junit_files([first, rerun], root=tmp_path)
    totals = result.report.totals
    assert (totals.tests, totals.passed, totals.failed, totals.flaky, totals.attempts) == (2, 1, 0, 1, 3)
    bad = next(t for t in result.report.tests if t.name == "bad")
    assert bad.outcome is Outcome.FLAKY
    assert [a.outcome for a in bad.attempts] == [Outcome.FAILED, Outcome.PASSED]
    assert result.flaky[0].test == "bad" and result.flaky[0].attempts == 2
    assert result.report.failures == []


def test_glob_with_no_match_and_escapes(make_repo: Callable[..., Path]) -> None:
    repo = make_repo({"reports/a.xml": GOOD})
    project = open_project(repo)
    with pytest.raises(NotFoundError, match=r"glob 'build/\*\*/\*\.xml' matches no file"):
        parse_junit_paths(project, ["build/**/*.xml"])
    with pytest.raises(PathOutsideRepoError, match="'..' leads outside the project"):
        parse_junit_paths(project, ["../*.xml"])
    with pytest.raises(PathOutsideRepoError, match="absolute path outside the project"):
        parse_junit_paths(project, ["/etc/*.xml"])
    result = parse_junit_paths(project, ["reports/*.xml", "reports/a.xml"])
    assert [f.path for f in result.files] == ["reports/a.xml"]


def test_counts_agree_with_junitparser_on_every_fixture(tmp_path: Path) -> None:
    """junitparser is the reference reader: per file, testcase and outcome counts must match it."""
    from junitparser import Error, Failure, JUnitXml, Skipped

    files = sorted(p for p in FIXTURES.rglob("*.xml") if p.name != "forbidden_chars.xml")
    checked = 0
    for path in files:
        xml = JUnitXml.fromfile(str(path))
        # junitparser iterates a suite's testcases at any depth, and a <testsuites> root's top-level suites.
        cases = list(xml) if xml._tag == "testsuite" else [case for suite in xml for case in suite]
        result = parse_junit_files([path])
        assert result.files[0].tests == len(cases), path.name
        plain = result.report.totals.attempts == result.report.totals.tests == len(cases)
        if plain and not result.flaky:
            kinds = [type(case.result[0]) if case.result else None for case in cases]
            assert result.report.totals.failed == kinds.count(Failure), path.name
            assert result.report.totals.errors == kinds.count(Error), path.name
            assert result.report.totals.skipped == kinds.count(Skipped), path.name
            checked += 1
    assert checked >= 10


def test_copied_run_folder(tmp_path: Path) -> None:
    """Surefire's layout: many TEST-*.xml files of one run read together."""
    target = tmp_path / "surefire-reports"
    shutil.copytree(FIXTURES / "surefire", target)
    result = parse_junit_files(sorted(target.glob("TEST-*.xml")), root=tmp_path)
    assert [f.dialect for f in result.files] == ["surefire", "surefire"]
    assert result.report.totals.flaky == 2 and result.report.totals.attempts == 11


@pytest.mark.parametrize(
    "text",
    ["x" * 200_000, "at " + "a." * 100_000, "a.rb" * 50_000, "at " * 60_000, ("y" * 5000 + "\n") * 40],
    ids=["word-run", "dotted", "ruby-ish", "at-spam", "long-lines"],
)
def test_location_search_is_linear_on_hostile_text(write: Callable[..., Path], tmp_path: Path, text: str) -> None:
    """Failure text is untrusted: the file:line patterns must not backtrack quadratically (ReDoS)."""
    xml = f'<testsuite name="s"><testcase name="t"><failure message="m">{text}</failure></testcase></testsuite>'
    start = time.perf_counter()
    result = parse_junit_files([write("hostile.xml", xml)], root=tmp_path)
    assert time.perf_counter() - start < 1.0
    assert result.report.totals.failed == 1
