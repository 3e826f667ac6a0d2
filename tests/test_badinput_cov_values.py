"""Coverage reports with impossible line numbers or hit counts: a CoverageError naming the file, the value and
where it sits, never an OverflowError or a silently wrong percentage."""

from __future__ import annotations

from pathlib import Path

import pytest

from itest_mcp.tools.covreaders import read_coverage
from itest_mcp.tools.errors import CoverageError


def _cobertura(tmp_path: Path, number: str, hits: str) -> Path:
    path = tmp_path / "coverage.xml"
    path.write_text(
        '<?xml version="1.0" ?>\n<coverage version="7.4">\n<packages><package name="p"><classes>\n'
        '<class name="a.py" filename="a.py"><lines>\n'
        '<line number="1" hits="1"/>\n'
        f'<line number="{number}" hits="{hits}"/>\n'
        "</lines></class>\n</classes></package></packages>\n</coverage>\n",
        encoding="utf-8",
    )
    return path


def _jacoco(tmp_path: Path, nr: str, ci: str = "1", method_line: str = "3") -> Path:
    path = tmp_path / "jacoco.xml"
    path.write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n<report name="r">\n<package name="com/ex">\n'
        '<class name="com/ex/A" sourcefilename="A.java">\n'
        f'<method name="run" desc="()V" line="{method_line}">'
        '<counter type="INSTRUCTION" missed="0" covered="2"/></method>\n</class>\n'
        '<sourcefile name="A.java">\n'
        '<line nr="3" mi="0" ci="2" mb="0" cb="0"/>\n'
        f'<line nr="{nr}" mi="0" ci="{ci}" mb="0" cb="0"/>\n'
        "</sourcefile>\n</package>\n</report>\n",
        encoding="utf-8",
    )
    return path


def _lcov(tmp_path: Path, record: str) -> Path:
    path = tmp_path / "lcov.info"
    path.write_text(f"TN:\nSF:src/a.js\nDA:1,1\n{record}\nend_of_record\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("number", ["-3", "4294967296", "99999999999"])
def test_cobertura_line_number_out_of_range_is_named(tmp_path: Path, number: str) -> None:
    with pytest.raises(CoverageError, match=rf"coverage\.xml:6: .*line number {number} .*regenerate"):
        read_coverage(_cobertura(tmp_path, number, "1"))


@pytest.mark.parametrize("nr", ["-1", "4294967296"])
def test_jacoco_line_number_out_of_range_is_named(tmp_path: Path, nr: str) -> None:
    with pytest.raises(CoverageError, match=rf"jacoco\.xml:9: .*line number {nr} .*regenerate"):
        read_coverage(_jacoco(tmp_path, nr))


def test_jacoco_method_line_out_of_range_is_named(tmp_path: Path) -> None:
    with pytest.raises(CoverageError, match=r"jacoco\.xml:5: .*line number -4 .*regenerate"):
        read_coverage(_jacoco(tmp_path, "4", method_line="-4"))


@pytest.mark.parametrize("record", ["DA:-1,1", "DA:99999999999,1", "FN:-2,f"])
def test_lcov_line_number_out_of_range_is_named(tmp_path: Path, record: str) -> None:
    value = record[3:].split(",")[0]
    with pytest.raises(CoverageError, match=rf"lcov\.info:4: .*line number {value} .*regenerate"):
        read_coverage(_lcov(tmp_path, record))


def test_largest_line_number_still_reads(tmp_path: Path) -> None:
    data = read_coverage(_cobertura(tmp_path, "4294967295", "0"))
    assert data.files["a.py"].totals() == (2, 1)


@pytest.mark.parametrize("hits", ["abc", "-7", "nan", ""])
def test_cobertura_hits_that_are_not_a_count_are_refused(tmp_path: Path, hits: str) -> None:
    with pytest.raises(CoverageError, match=rf"coverage\.xml:6: .*hits={hits!r}.*not a count.*regenerate"):
        read_coverage(_cobertura(tmp_path, "2", hits))


@pytest.mark.parametrize(("hits", "covered"), [("0", 0), ("0.0", 0), ("00", 0), ("3", 1), ("2.5", 1), ("1e3", 1)])
def test_cobertura_hits_count_by_value(tmp_path: Path, hits: str, covered: int) -> None:
    data = read_coverage(_cobertura(tmp_path, "2", hits))
    assert data.files["a.py"].totals() == (2, 1 + covered)


def test_jacoco_negative_ci_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CoverageError, match=r"jacoco\.xml:9: .*ci='-7'.*not a count.*regenerate"):
        read_coverage(_jacoco(tmp_path, "4", ci="-7"))


def test_lcov_negative_hits_are_refused(tmp_path: Path) -> None:
    with pytest.raises(CoverageError, match=r"lcov\.info:4: .*'-5'.*not a count.*regenerate"):
        read_coverage(_lcov(tmp_path, "DA:2,-5"))
