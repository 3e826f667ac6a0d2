"""The latest result of each tool, kept as `.itest/latest/<kind>.json` for the report to read.

Tools call `save_latest(project, "assess", result)` after they succeed, and
`save_error(project, "coverage", exc)` when their input could not be read, so the
report can say what went wrong instead of silently leaving a section empty.
Kinds in use: "assess" (assess_changes), "coverage" (find_coverage_gaps),
"github" (validate_github_api).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from .errors import InputError, ParseError
from .repo import Project

KIND = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")

ERROR_KEY = "_error"
"""Marks a stored record as a failure (`save_error`) rather than a result."""


def latest_dir(project: Project) -> Path:
    """`.itest/latest/`, created on demand."""
    return project.state_subdir("latest")


def _path(project: Project, kind: str) -> Path:
    if not KIND.match(kind):
        raise InputError(f"result kind {kind!r} must be lower-case letters, digits, '-' or '_' (e.g. 'coverage')")
    return latest_dir(project) / f"{kind}.json"


def _write_atomic(path: Path, data: dict[str, Any]) -> None:
    # A reader never sees half a file: write beside it, then rename over it.
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, default=str)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_latest(project: Project, kind: str, model: BaseModel, *, meta: dict[str, Any] | None = None) -> Path:
    """Store `model` as the latest result of `kind` (replacing the previous one); `meta` keys are kept as `_key`."""
    data = model.model_dump(mode="json")
    for key, value in (meta or {}).items():
        data[f"_{key}"] = value
    data["_saved_at"] = datetime.now(UTC).isoformat()
    path = _path(project, kind)
    _write_atomic(path, data)
    return path


def save_error(project: Project, kind: str, error: BaseException | str, *, source: str | None = None) -> Path:
    """Store that the latest attempt at `kind` failed (message and, when known, the input file)."""
    data: dict[str, Any] = {
        ERROR_KEY: str(error),
        "_error_type": type(error).__name__ if isinstance(error, BaseException) else "error",
        "_saved_at": datetime.now(UTC).isoformat(),
    }
    if source:
        data["_source"] = source
    path = _path(project, kind)
    _write_atomic(path, data)
    return path


def load_latest(project: Project, kind: str) -> dict[str, Any] | None:
    """The latest stored result of `kind` as a dict, None when there is none, ParseError when unreadable."""
    path = _path(project, kind)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except UnicodeDecodeError as exc:
        raise ParseError(
            f"{project.rel(path)} is not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start}), "
            f"so it is not a result this tool saved; rerun the {kind} tool to replace it"
        ) from exc
    except OSError as exc:
        raise ParseError(f"{project.rel(path)} cannot be read ({exc.strerror or exc}); rerun the {kind} tool") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ParseError(
            f"{project.rel(path)} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); "
            f"rerun the {kind} tool to replace it"
        ) from exc
    if not isinstance(data, dict):
        raise ParseError(f"{project.rel(path)} holds a {type(data).__name__}, not an object; rerun the {kind} tool")
    return data
