"""Peak RSS of a supervised child's tree: the child's own, never the memory of the process that started it.

On Linux a child's `ru_maxrss` keeps the high-water mark of the process it was forked from, so a tiny
child of a big server used to be reported as big as the server.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from itest_mcp.tools.process import run_supervised
from itest_mcp.tools.proctree import own_peak_kb

pytestmark = pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc (Linux)")

TOUCH = "x = bytearray({mb} << 20)\nfor i in range(0, len(x), 4096):\n    x[i] = 1\nimport time\ntime.sleep(0.4)\n"


async def _peak(tmp_path: Path, code: str) -> float | None:
    result = await run_supervised(
        [sys.executable, "-c", code], cwd=tmp_path, env=None, log_path=tmp_path / "log", on_line=lambda _b: None,
        timeout_s=60,
    )  # fmt: skip
    assert result.returncode == 0, result.tail
    return result.peak_rss_mb


@pytest.fixture(scope="module")
def big_parent() -> int:
    """Raise this process's high-water mark to 300 MB (it stays there after the memory is freed)."""
    block = bytearray(300 << 20)
    for i in range(0, len(block), 4096):
        block[i] = 1
    del block
    return own_peak_kb()


@pytest.mark.anyio
async def test_a_small_child_of_a_big_parent_is_small(tmp_path: Path, big_parent: int) -> None:
    assert big_parent > 300 * 1024
    peak = await _peak(tmp_path, "import time\ntime.sleep(0.2)\n")
    assert peak is not None and peak < 60, peak


@pytest.mark.anyio
async def test_a_big_child_is_measured(tmp_path: Path, big_parent: int) -> None:
    peak = await _peak(tmp_path, TOUCH.format(mb=150))
    assert peak is not None and 150 <= peak < 250, peak


@pytest.mark.anyio
async def test_a_big_grandchild_counts(tmp_path: Path, big_parent: int) -> None:
    inner = TOUCH.format(mb=120)
    code = f"import subprocess, sys\nsubprocess.run([sys.executable, '-c', {inner!r}], check=True)\n"
    peak = await _peak(tmp_path, code)
    assert peak is not None and 120 <= peak < 220, peak
