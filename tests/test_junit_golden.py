"""Golden tests: one real-looking file (or folder) per JUnit dialect and the report it must give.

Regenerate with `UPDATE_GOLDEN=1 python -m pytest tests/test_junit_golden.py`, then read the diff:
a golden is only right once a person has checked it against the XML.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from itest_mcp.tools.junit import JUnitParseResult, parse_junit_files

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "junit"
CASES = sorted(
    p.name for p in FIXTURES.iterdir() if (p.suffix == ".xml" or p.is_dir()) and not p.name.startswith("bad_")
)


def inputs(name: str) -> list[Path]:
    path = FIXTURES / name
    return sorted(path.glob("*.xml")) if path.is_dir() else [path]


def snapshot(result: JUnitParseResult) -> dict[str, Any]:
    """The result as JSON, plus the per-test list (which the wire format leaves out)."""
    data = result.model_dump(mode="json")
    data["tests"] = [
        {
            "name": t.name,
            "classname": t.classname,
            "suite": t.suite,
            "outcome": t.outcome.value,
            "attempts": [a.outcome.value for a in t.attempts],
            **({"location": str(t.location)} if t.location else {}),
        }
        for t in result.report.tests
    ]
    return data


@pytest.mark.parametrize("name", CASES)
def test_golden(name: str) -> None:
    result = parse_junit_files(inputs(name), root=FIXTURES)
    got = snapshot(result)
    expected_file = FIXTURES / f"{Path(name).stem}.expected.json"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        expected_file.write_text(json.dumps(got, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    expected = json.loads(expected_file.read_text(encoding="utf-8"))
    assert got == expected
