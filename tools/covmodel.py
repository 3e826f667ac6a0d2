"""The coverage model every reader yields, and line queries on it.

`CoverageData` holds per file (named as the report names it; `covmap` maps names to repository
files) a `FileData` of *entries*, each an inclusive line span with a weight (statements for Go,
1 for line formats) and a covered flag. Line status follows one rule for every format
(diff-cover's and Codecov's): a line is measured when an entry spans it and covered only when
every entry spanning it in that report was executed, so a partially run line (`if err != nil {`
whose body never ran) counts as uncovered. A Go file keeps only its totals and where its block
lines sit in the profile (`covgoblocks`).
"""

from __future__ import annotations

import gc
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import accumulate, compress

from .covgoblocks import GoProfile, GoSection, go_index, unique_block_totals
from .covgodecode import LANE_VALUES, lane_key, lane_value
from .covspans import Index, Ranges, Spans, merge_spans, query_index, sorted_index, span_lines
from .errors import CoverageError


@dataclass(slots=True)
class FileData:
    """The entries of one file in one report: line spans, weights and covered flags.

    Line formats keep their lines in memory. Go files keep only their totals and where
    their block lines sit in the profile; line positions are read back for the files a
    caller queries, so memory grows with the number of files, not of blocks.
    """

    name: str
    unit: str = "lines"
    """"statements" (Go) or "lines" (line formats): what `weights` count."""
    starts_list: array[int] = field(default_factory=lambda: array("I"))
    ends_list: array[int] = field(default_factory=lambda: array("I"))
    weights: bytes | array[int] = b""
    flags: bytes = b""
    functions: list[tuple[str, int, int, bool]] = field(default_factory=list)
    """(name, first line, last line or 0, executed) where the report lists functions (LCOV, JaCoCo)."""
    go_sections: list[GoSection] = field(default_factory=list)
    go_totals: tuple[int, int] = (0, 0)
    """Go: (measured, covered) statements, repeated blocks counted once."""
    go_blocks: int = 0
    repeated: bool = False
    """Go: the sections may list a block more than once (merged profiles), so reads dedupe."""
    changed: ChangedBlocks | None = None
    """Go: the blocks meeting this file's changed lines, kept while the profile streams (`covgo.read_go_profile`)."""
    _index: Index | None = None

    @property
    def is_go(self) -> bool:
        return bool(self.go_sections)

    @property
    def entries(self) -> int:
        return self.go_blocks if self.go_sections else len(self.flags)

    def totals(self) -> tuple[int, int]:
        """(measured, covered) in `unit`."""
        if self.go_sections:
            return self.go_totals
        w = self.weights
        return sum(w), sum(compress(w, self.flags))

    def line_index(self) -> Index:
        """Entries sorted by start: (starts, ends, flags, running max of ends) for range queries.

        Go positions are read back from the profile on every call and not kept, so querying
        many files stays flat in memory; batch queries with `query_files`.
        """
        if self._index is not None:
            return self._index
        if self.go_sections:
            return go_index(self, None)
        self._index = sorted_index(list(self.starts_list), list(self.ends_list), self.flags)
        return self._index

    def query(self, lo: int, hi: int) -> tuple[Spans, Spans]:
        """Measured and uncovered line spans within [lo, hi], each merged and sorted."""
        return self.query_ranges([(lo, hi)])[0]

    def query_ranges(self, ranges: Iterable[tuple[int, int]]) -> list[tuple[Spans, Spans]]:
        """`query` for several ranges of this file at once (one read of its positions)."""
        return query_index(self.line_index(), ranges)


@dataclass(slots=True)
class ChangedBlocks:
    """The blocks of one Go file that meet its changed line ranges, found during the single read of the profile.

    Only those blocks are kept (memory grows with changed lines, not blocks), each once: keyed by its
    position token, executed when any of its lines in any merged profile says so.
    """

    ranges: Ranges
    blocks: dict[bytes, tuple[int, int, bool]] = field(default_factory=dict)
    lane_ranges: Ranges = field(default_factory=list)
    """`ranges` as lane keys (`lane_key`), to compare with `covgodecode.lane_positions` without decoding."""

    def __post_init__(self) -> None:
        self.lane_ranges = [(lane_key(lo), lane_key(hi)) for lo, hi in self.ranges]

    def add(
        self, keys: Sequence[bytes], starts: Sequence[int], ends: Sequence[int], flags: bytes, *, lanes: bool
    ) -> None:
        """Keep the blocks (profile order) that meet a changed range; `lanes`: positions are lane keys."""
        blocks = self.blocks
        values = LANE_VALUES
        for k in _meeting(starts, ends, self.lane_ranges if lanes else self.ranges):
            key = keys[k]
            old = blocks.get(key)
            if old is None:
                s, e = starts[k], ends[k]
                if lanes:
                    s = values.get(s) or lane_value(s)
                    e = values.get(e) or lane_value(e)
                blocks[key] = (s, e, flags[k] != 0)
            elif not old[2] and flags[k]:
                blocks[key] = (old[0], old[1], True)

    def merge(self, other: ChangedBlocks) -> ChangedBlocks:
        """Both reports' blocks: a block counts once, executed when either report executed it."""
        out = ChangedBlocks(self.ranges, dict(self.blocks))
        for key, (s, e, hit) in other.blocks.items():
            old = out.blocks.get(key)
            out.blocks[key] = (s, e, hit or (old is not None and old[2]))
        return out

    def summary(self) -> tuple[int, Spans]:
        """Measured changed lines and the uncovered ones as merged spans (a line is uncovered when any block on it
        never ran)."""
        measured, uncovered, _executed = self.spans()
        return measured, uncovered

    def spans(self) -> tuple[int, Spans, Spans]:
        """`summary`, and the changed lines some executed block covers (merged spans), in one pass."""
        measured: Spans = []
        uncovered: Spans = []
        executed: Spans = []
        ranges = self.ranges
        for s, e, hit in self.blocks.values():
            for lo, hi in ranges:
                if s <= hi and e >= lo:
                    span = (s if s > lo else lo, e if e < hi else hi)
                    measured.append(span)
                    (executed if hit else uncovered).append(span)
        return span_lines(merge_spans(measured)), merge_spans(uncovered), merge_spans(executed)


def _meeting(starts: Sequence[int], ends: Sequence[int], ranges: Ranges) -> list[int]:
    """Indexes of the blocks [start, end] that share a line with some range (sorted starts: bisect)."""
    n = len(starts)
    ordered = sorted(starts)
    order: list[int] | None = None
    if ordered != starts:
        order = sorted(range(n), key=starts.__getitem__)
        ends = [ends[i] for i in order]
    ends_sorted = sorted(ends)
    maxend = ends if ends_sorted == ends else list(accumulate(ends, max))
    out: list[int] = []
    for lo, hi in ranges:
        j = bisect_right(ordered, hi)
        for k in range(bisect_left(maxend, lo), j):
            if ends[k] >= lo:
                out.append(k if order is None else order[k])
    return out


def query_files(items: Sequence[tuple[FileData, Sequence[tuple[int, int]]]]) -> list[list[tuple[Spans, Spans]]]:
    """`FileData.query_ranges` for many files: each Go profile is opened once and read in file order."""
    results: list[list[tuple[Spans, Spans]]] = [[] for _ in items]
    by_profile: dict[int, tuple[GoProfile, list[tuple[int, int]]]] = {}
    for i, (fd, ranges) in enumerate(items):
        if fd.go_sections and len(fd.go_sections) == 1 and not fd.repeated:
            sec = fd.go_sections[0]
            by_profile.setdefault(id(sec.profile), (sec.profile, []))[1].append((sec.offset, i))
        else:
            results[i] = fd.query_ranges(ranges)
    for profile, entries in by_profile.values():
        entries.sort()
        with profile.open() as fh:
            for offset, i in entries:
                fd, ranges = items[i]
                fh.seek(offset)
                text = fh.read(fd.go_sections[0].length)
                results[i] = query_index(go_index(fd, text), ranges)
    return results


@dataclass(slots=True)
class CoverageData:
    """What one coverage file says, per file name as written in it."""

    source: str
    format: str
    mode: str | None = None
    files: dict[str, FileData] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)
    """Cobertura `<source>` roots the file names are relative to."""
    entries_read: int = 0
    notes: list[str] = field(default_factory=list)


@contextmanager
def paused_gc() -> Iterator[None]:
    """No cycle collection during a bulk read or join: they allocate many short-lived containers and no cycles,
    and full collections over a big process measured 10-20% of a Go profile's read and join."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def merge_files(a: FileData, b: FileData) -> FileData:
    """What two reports say about one file: a block or line counts once, covered when either covers it."""
    if a.is_go and b.is_go:
        out = FileData(name=a.name, unit="statements", go_sections=a.go_sections + b.go_sections, repeated=True)
        if a.changed is not None and b.changed is not None and a.changed.ranges == b.changed.ranges:
            out.changed = a.changed.merge(b.changed)
        m, c, blocks = unique_block_totals(out)
        out.go_totals = (m, c)
        out.go_blocks = blocks
        return out
    if a.is_go or b.is_go:
        raise CoverageError(f"{a.name!r} appears as a Go profile and as a line report; pass one of them")
    return merge_line_files(a, b)


LINE_MAX = 2**32 - 1
"""The largest line number a report may give: `FileData` keeps lines in `array("I")`; no source file comes near."""


def bad_line_number(where: str, value: int) -> CoverageError:
    """A line number no source file can have (negative or beyond `LINE_MAX`): the report is damaged."""
    return CoverageError(
        f"{where}: line number {value} is out of range (0 to {LINE_MAX}); "
        f"the report is damaged, regenerate it with the coverage tool"
    )


def bad_count(where: str, what: str) -> CoverageError:
    """A hit count that is not a number of executions: counting it either way would give a wrong percentage."""
    return CoverageError(
        f"{where}: {what} is not a count of executions (a number 0 or more); "
        f"the report is damaged, regenerate it with the coverage tool"
    )


def parse_count(text: str) -> float | None:
    """A hit count as a report writes it ("3", "0.0", "1e3"), or None when it is not a number 0 or more."""
    try:
        value = float(text)
    except ValueError:
        return None
    return value if value >= 0 else None  # NaN fails the comparison too


def line_file(name: str, lines: list[int], hits: list[bool], old: FileData | None) -> FileData:
    """A line-format FileData; duplicate lines within one report: uncovered if any record says 0."""
    if old is not None:
        lines = list(old.starts_list) + lines
        hits = [bool(f) for f in old.flags] + hits
    if len(set(lines)) != len(lines):
        merged: dict[int, bool] = {}
        for ln, h in zip(lines, hits, strict=True):
            merged[ln] = merged.get(ln, True) and h
        lines = sorted(merged)
        hits = [merged[ln] for ln in lines]
    try:
        starts = array("I", lines)
    except OverflowError:  # the readers check each number with its place; this names the file for any other caller
        bad = next(ln for ln in lines if not 0 <= ln <= LINE_MAX)
        raise bad_line_number(repr(name), bad) from None
    return FileData(
        name=name,
        unit="lines",
        starts_list=starts,
        ends_list=starts,
        weights=bytes([1]) * len(lines),
        flags=bytes(hits),
    )


def merge_line_files(a: FileData, b: FileData) -> FileData:
    """Two reports' data for one file: a line is covered when either report covers it."""
    if a.is_go or b.is_go:
        raise CoverageError(f"{a.name!r} appears as a Go profile and as a line report; pass one of them")
    merged: dict[int, bool] = {}
    for src in (a, b):
        for ln, f in zip(src.starts_list, src.flags, strict=True):
            merged[ln] = merged.get(ln, False) or bool(f)
    lines = sorted(merged)
    starts = array("I", lines)
    out = FileData(
        name=a.name,
        unit="lines",
        starts_list=starts,
        ends_list=starts,
        weights=bytes([1]) * len(lines),
        flags=bytes(merged[ln] for ln in lines),
    )
    out.functions = a.functions + b.functions
    return out
