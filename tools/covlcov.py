"""Read LCOV tracefiles (SF/DA/FN/FNDA records; several records for one file merge)."""

from __future__ import annotations

from pathlib import Path

from .covmodel import LINE_MAX, CoverageData, bad_count, bad_line_number, line_file, merge_line_files
from .errors import CoverageError

LCOV = "lcov"


def read_lcov(path: Path) -> CoverageData:
    """Read an LCOV tracefile (SF/DA/FN/FNDA records; several test names merge)."""
    data = CoverageData(source=str(path), format=LCOV)
    name: str | None = None
    nums: list[int] = []
    hits: list[bool] = []
    fn_lines: dict[str, tuple[int, int]] = {}
    fn_hits: dict[str, bool] = {}
    try:
        fh = open(path, encoding="utf-8", errors="replace")
    except OSError as exc:
        raise CoverageError(f"cannot read coverage file {str(path)!r}: {exc.strerror or exc}") from exc
    with fh:
        for lineno, raw in enumerate(fh, 1):
            line = raw.strip()
            try:
                if line.startswith("DA:"):
                    parts = line[3:].split(",")
                    num = int(parts[0])
                    if not 0 <= num <= LINE_MAX:
                        raise bad_line_number(f"{path}:{lineno}", num)
                    executions = float(parts[1])
                    if not executions >= 0:
                        raise bad_count(f"{path}:{lineno}", f"the hit count {parts[1]!r}")
                    nums.append(num)
                    hits.append(executions >= 1)
                elif line.startswith("SF:"):
                    name = line[3:].replace("\\", "/")
                    nums, hits, fn_lines, fn_hits = [], [], {}, {}
                elif line.startswith("FN:"):
                    parts = line[3:].split(",")
                    if len(parts) >= 3:  # lcov 2: FN:start,end,name
                        fname, first, last = parts[2], int(parts[0]), int(parts[1])
                    else:
                        fname, first, last = parts[1], int(parts[0]), 0
                    for num in (first, last):
                        if not 0 <= num <= LINE_MAX:
                            raise bad_line_number(f"{path}:{lineno}", num)
                    fn_lines[fname] = (first, last)
                elif line.startswith("FNDA:"):
                    count, _, fname = line[5:].partition(",")
                    fn_hits[fname] = fn_hits.get(fname, False) or int(float(count)) > 0
                elif line == "end_of_record":
                    if name is None:
                        raise CoverageError(f"{path}:{lineno}: end_of_record without SF:; not an LCOV tracefile")
                    # Several records for one file (one per test name): covered when covered in any.
                    fd = line_file(name, nums, hits, None)
                    old = data.files.get(name)
                    if old is not None:
                        fd = merge_line_files(old, fd)
                    fd.functions = (old.functions if old else []) + [
                        (fname, s, e, fn_hits.get(fname, False)) for fname, (s, e) in fn_lines.items()
                    ]
                    data.files[name] = fd
                    data.entries_read += len(nums)
                    name = None
            except (ValueError, IndexError) as exc:
                raise CoverageError(f"{path}:{lineno}: malformed LCOV record {line[:80]!r} ({exc})") from exc
    if name is not None and nums:
        data.notes.append(f"{path}: the last record (SF:{name}) has no end_of_record; read anyway")
        data.files[name] = line_file(name, nums, hits, None)
    return data
