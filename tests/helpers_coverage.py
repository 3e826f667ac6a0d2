"""Comparing coverage readings (the compiled and the Python Go profile readers)."""

from __future__ import annotations

from typing import Any

from itest_mcp.tools.covmodel import CoverageData


def snapshot(data: CoverageData) -> dict[str, Any]:
    files = {}
    for name, fd in data.files.items():
        changed = None if fd.changed is None else (fd.changed.ranges, dict(fd.changed.blocks))
        sections = [(s.offset, s.lines) for s in fd.go_sections]
        files[name] = (fd.go_totals, fd.go_blocks, fd.repeated, sections, changed)
    return {"mode": data.mode, "entries": data.entries_read, "notes": data.notes, "files": files}
