"""Shared setup of the run tests: committed copies of the demo and of the hanging Go module, and the
processes a run left behind."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from conftest import DEMO, FIXTURES, commit_all, init_repo

HANG = FIXTURES / "run" / "gomod" / "hang"


def committed(path: Path) -> Path:
    """`path` made a git repository with everything in it committed."""
    init_repo(path)
    commit_all(path, "init")
    return path


def demo_copy(target: Path) -> Path:
    """A committed copy of examples/demo at `target` (without its run folders and caches)."""
    shutil.copytree(DEMO, target, ignore=shutil.ignore_patterns(".itest", "__pycache__", ".pytest_cache"))
    return committed(target)


def hang_project(tmp_path: Path) -> Path:
    """A committed copy of the Go module whose test hangs, with one phase `hang` running it."""
    project = tmp_path / "hang"
    shutil.copytree(HANG, project)
    (project / "itest.toml").write_text('[phases.hang]\nrunner = "go"\nrace = false\n', encoding="utf-8")
    return committed(project)


def processes_with_run_dir(prefix: str) -> list[int]:
    """Live pids whose environment has ITEST_RUN_DIR under `prefix` (go and its test binaries inherit it)."""
    marker = f"ITEST_RUN_DIR={prefix}".encode()
    found: list[int] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as handle:
                environ = handle.read()
            with open(f"/proc/{entry}/stat", "rb") as handle:
                state = handle.read().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        if marker in environ and state != b"Z":  # a zombie is gone, only not yet reaped
            found.append(int(entry))
    return found
