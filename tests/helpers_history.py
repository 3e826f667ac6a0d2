"""Shared setup of the history and report tests: the run factory (loaded once, by path) and their fixed clock."""

from __future__ import annotations

import importlib.util
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

__all__ = ["NOW", "factory"]


def _load_factory() -> ModuleType:
    # By path: tests/fixtures is fixture data, not a package.
    path = Path(__file__).parent / "fixtures" / "history" / "factory.py"
    spec = importlib.util.spec_from_file_location("history_factory", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


factory = _load_factory()
NOW = datetime(2025, 2, 1, 9, 30, tzinfo=UTC)
"""The report tests' "now": a month after the factory's first run."""
