"""The `coverage run` prefix of a pytest phase: what it measures and what it leaves out.

coverage.py measures every Python file that runs unless told otherwise, so a plain
`coverage run -m pytest` counts the test files themselves and our own plugin in the
run folder (which then shows up as a file no change can match). The prefix omits
the run folder always, and the test files (tests/, test_*.py, *_test.py, conftest.py)
unless the project chose what to measure with a `source` of its own. `--omit` on the
command line replaces the project's configured omit list, so that list is read first
(with the project's interpreter and config) and kept.
"""

from __future__ import annotations

import json
from pathlib import Path

from .process import run_capture

TEST_FILE_PATTERNS = ("*/tests/*", "*/test_*.py", "*_test.py", "*/conftest.py")
_PROBE = (
    "import json, coverage\n"
    "config = coverage.Coverage().config\n"
    "print(json.dumps({'source': config.source, 'omit': config.run_omit}))\n"
)


def coverage_prefix(python: str, root: Path, run_dir: Path, data_file: Path, env: dict[str, str]) -> list[str] | None:
    """`python -m coverage run --data-file=… --omit=…`, or None when coverage.py is not installed there."""
    probe = run_capture([python, "-c", _PROBE], cwd=root, timeout=30, env=env)
    if probe.returncode != 0:
        return None
    try:
        config = json.loads(probe.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        config = {}
    configured = [str(p) for p in config.get("omit") or []] if isinstance(config, dict) else []
    has_source = bool(config.get("source")) if isinstance(config, dict) else False
    omit = [*configured, f"{run_dir}/*"]
    if not has_source:
        omit += TEST_FILE_PATTERNS
    return [python, "-m", "coverage", "run", f"--data-file={data_file}", f"--omit={','.join(omit)}"]
