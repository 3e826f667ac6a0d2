"""Streaming readers for coverage files: Go coverprofiles, Cobertura, LCOV and JaCoCo XML.

Every reader yields the same `CoverageData`: per file (named as the report names it;
`covmap` maps names to repository files) a list of *entries*, each an inclusive line
span with a weight (statements for Go, 1 for line formats) and a covered flag.
Line status follows one rule for every format (diff-cover's and Codecov's): a line
is measured when an entry spans it and covered only when every entry spanning it in
that report was executed, so a partially run line (`if err != nil {` whose body never
ran) counts as uncovered.

Go profiles are read in bulk, not line by line: each run of consecutive lines naming
one file is found with a few C-level searches and checked and summed with C-level
split/join/translate. Per file only its totals and where its runs sit in the profile
are kept (memory grows with files, not blocks; a 1 GB profile streams in 4 MB pieces);
block positions are read back from the profile only for the files a caller queries.
Blocks repeated across merged profiles (one section per test binary with `-coverpkg`)
are counted once.
"""

from __future__ import annotations

import gc
import os
import re
import sys
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import accumulate, compress
from operator import itemgetter
from pathlib import Path
from typing import Any, BinaryIO

from .errors import CoverageError

GO = "go"
COBERTURA = "cobertura"
LCOV = "lcov"
JACOCO = "jacoco"
FORMATS = (GO, COBERTURA, LCOV, JACOCO)

CHUNK = 4 << 20
"""Bytes of a Go profile parsed at a time (a huge profile streams in pieces of this size)."""
SNIFF = 4096

_GO_MODES = (b"set", b"count", b"atomic")
# One match per run of consecutive lines naming the same file ("name:sl.sc,el.ec stmts count").
# Possessive quantifiers: no backtracking, so a run costs one pass in C. A Windows drive
# letter may precede the name.
_GO_LINE = re.compile(rb"^(?:[A-Za-z]:)?[^\n:]+:\d+\.\d+,\d+\.\d+ \d+ \d+\r?$")
_POS_SPLIT = bytes.maketrans(b".,", b"  ")
_DIGIT_VALUES = bytes.maketrans(b"0123456789", bytes(range(10)))
_DIGIT_FLAGS = bytes.maketrans(b"0123456789", bytes([0] + [1] * 9))
_SEP_TABS = bytes.maketrans(b".,: \n", b"\t" * 5)
_NOT_SEP_DIGITS = bytes(c for c in range(256) if c not in b"0123456789.,: \n")
_LANE_DIGITS = bytes.maketrans(b" 0123456789", b"\x00" + bytes(range(10)))
_NONZERO = bytes([0] + [1] * 255)


@dataclass(slots=True)
class GoSection:
    """Where one run of a file's block lines sits in a Go profile (read again only when queried)."""

    profile: GoProfile
    offset: int
    length: int
    lines: int


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
    """Go: the blocks meeting this file's changed lines, collected while the profile streams (see `read_go_profile`)."""
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
            return _go_index(self, None)
        self._index = _sorted_index(list(self.starts_list), list(self.ends_list), self.flags)
        return self._index

    def query(self, lo: int, hi: int) -> tuple[Spans, Spans]:
        """Measured and uncovered line spans within [lo, hi], each merged and sorted."""
        return self.query_ranges([(lo, hi)])[0]

    def query_ranges(self, ranges: Iterable[tuple[int, int]]) -> list[tuple[Spans, Spans]]:
        """`query` for several ranges of this file at once (one read of its positions)."""
        return _query_index(self.line_index(), ranges)


Spans = list[tuple[int, int]]
Index = tuple[list[int], list[int], bytes, list[int]]
Ranges = list[tuple[int, int]]
WantRanges = Callable[[str], "Ranges | None"]
"""Given a file name as the profile writes it, its changed line ranges (inclusive), or None."""


@dataclass(slots=True)
class ChangedBlocks:
    """The blocks of one Go file that meet its changed line ranges, found during the single read of the profile.

    Only those blocks are kept (memory grows with changed lines, not blocks), each once: keyed by its
    position token, executed when any of its lines in any merged profile says so.
    """

    ranges: Ranges
    blocks: dict[bytes, tuple[int, int, bool]] = field(default_factory=dict)
    lane_ranges: Ranges = field(default_factory=list)
    """`ranges` as lane keys (`_lane_key`), to compare with `_lane_positions` without decoding."""

    def __post_init__(self) -> None:
        self.lane_ranges = [(_lane_key(lo), _lane_key(hi)) for lo, hi in self.ranges]

    def add(
        self, keys: Sequence[bytes], starts: Sequence[int], ends: Sequence[int], flags: bytes, *, lanes: bool
    ) -> None:
        """Keep the blocks (profile order) that meet a changed range; `lanes`: positions are lane keys."""
        blocks = self.blocks
        values = _VALUES
        for k in _meeting(starts, ends, self.lane_ranges if lanes else self.ranges):
            key = keys[k]
            old = blocks.get(key)
            if old is None:
                s, e = starts[k], ends[k]
                if lanes:
                    s = values.get(s) or _lane_value(s)
                    e = values.get(e) or _lane_value(e)
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
        measured: Spans = []
        uncovered: Spans = []
        ranges = self.ranges
        for s, e, hit in self.blocks.values():
            for lo, hi in ranges:
                if s <= hi and e >= lo:
                    span = (s if s > lo else lo, e if e < hi else hi)
                    measured.append(span)
                    if not hit:
                        uncovered.append(span)
        return span_lines(merge_spans(measured)), merge_spans(uncovered)


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


def _sorted_index(starts: list[int], ends: list[int], flags: bytes) -> Index:
    if starts != sorted(starts):
        order = sorted(range(len(starts)), key=starts.__getitem__)
        starts = [starts[i] for i in order]
        ends = [ends[i] for i in order]
        flags = bytes(flags[i] for i in order)
    maxend = ends if ends == sorted(ends) else list(accumulate(ends, max))
    return starts, ends, flags, maxend


def _query_index(index: Index, ranges: Iterable[tuple[int, int]]) -> list[tuple[Spans, Spans]]:
    starts, ends, flags, maxend = index
    out = []
    for lo, hi in ranges:
        i = bisect_left(maxend, lo)
        j = bisect_right(starts, hi)
        measured: Spans = []
        uncovered: Spans = []
        for k in range(i, j):
            e = ends[k]
            if e < lo:
                continue
            s = starts[k]
            span = (s if s > lo else lo, e if e < hi else hi)
            measured.append(span)
            if not flags[k]:
                uncovered.append(span)
        out.append((merge_spans(measured), merge_spans(uncovered)))
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
                results[i] = _query_index(_go_index(fd, text), ranges)
    return results


def merge_spans(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sort and merge overlapping or adjacent inclusive spans."""
    if len(spans) < 2:
        return spans
    spans.sort()
    out = [spans[0]]
    for s, e in spans[1:]:
        ls, le = out[-1]
        if s <= le + 1:
            if e > le:
                out[-1] = (ls, e)
        else:
            out.append((s, e))
    return out


def subtract_spans(a: list[tuple[int, int]], b: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Lines in merged spans `a` that are not in merged spans `b`."""
    out: list[tuple[int, int]] = []
    j = 0
    for s, e in a:
        cur = s
        while j < len(b) and b[j][1] < cur:
            j += 1
        k = j
        while k < len(b) and b[k][0] <= e:
            bs, be = b[k]
            if bs > cur:
                out.append((cur, bs - 1))
            cur = max(cur, be + 1)
            k += 1
        if cur <= e:
            out.append((cur, e))
    return out


def span_lines(spans: list[tuple[int, int]]) -> int:
    """How many lines merged spans hold."""
    if not spans:
        return 0
    total: int = sum(map(_SECOND, spans)) - sum(map(_FIRST, spans))
    return total + len(spans)


_FIRST = itemgetter(0)
_SECOND = itemgetter(1)


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


# -- format sniffing -------------------------------------------------------------------------


def sniff_format(path: Path) -> str:
    """The format of a coverage file, or CoverageError naming it and showing its first bytes."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(SNIFF)
    except OSError as exc:
        raise CoverageError(f"cannot read coverage file {str(path)!r}: {exc.strerror or exc}") from exc
    if not head.strip():
        raise CoverageError(
            f"coverage file {str(path)!r} is empty; the run probably stopped before writing coverage — "
            f"rerun the phase with coverage enabled"
        )
    text = head.lstrip(b"\xef\xbb\xbf").lstrip()
    first = text.split(b"\n", 1)[0].strip()
    if first.startswith(b"mode:"):
        return GO
    if _GO_LINE.match(first):
        raise CoverageError(
            f"Go coverage profile {str(path)!r} has no 'mode:' line (it starts with {_show(head)}); "
            f"write profiles with `go test -coverprofile=FILE` and do not strip the first line"
        )
    if text.startswith(b"<") or text.startswith(b"<?xml"):
        lowered = text.lower()
        if b"clover=" in lowered or b"<project" in lowered and b"<coverage" in lowered:
            raise CoverageError(
                f"{str(path)!r} is a Clover XML report, which is not supported; "
                f"write Cobertura (coverage xml), LCOV, JaCoCo or a Go coverprofile instead"
            )
        if b"jacoco" in lowered or re.search(rb"<report[\s>]", lowered):
            return JACOCO
        if b"<coverage" in lowered:
            return COBERTURA
    for line in text.splitlines()[:20]:
        if line[:3] in (b"TN:", b"SF:"):
            return LCOV
    raise CoverageError(
        f"{str(path)!r} is in no known coverage format (it starts with {_show(head)}); "
        f"give a Go coverprofile, Cobertura XML, LCOV or JaCoCo XML file"
    )


def _show(head: bytes, limit: int = 80) -> str:
    return repr(head[:limit].decode("utf-8", errors="replace")) + ("…" if len(head) > limit else "")


def read_coverage(
    path: Path, fmt: str | None = None, want: WantRanges | None = None, keys: Mapping[str, Ranges] | None = None
) -> CoverageData:
    """Read one coverage file in any supported format (sniffed unless given); `want`, `keys`: see `read_go_profile`."""
    fmt = fmt or sniff_format(path)
    if fmt == GO:
        return read_go_profile(path, want=want, keys=keys)
    if fmt == COBERTURA:
        return read_cobertura(path)
    if fmt == LCOV:
        return read_lcov(path)
    if fmt == JACOCO:
        return read_jacoco(path)
    raise CoverageError(f"unknown coverage format {fmt!r}; known: {', '.join(FORMATS)}")


# -- Go coverprofile -----------------------------------------------------------------------


class GoProfile:
    """A Go profile file that `GoSection`s point into; reads refuse a file changed since it was parsed."""

    __slots__ = ("path", "size", "mtime_ns")

    def __init__(self, path: Path, size: int, mtime_ns: int) -> None:
        self.path = path
        self.size = size
        self.mtime_ns = mtime_ns

    def open(self) -> BinaryIO:
        """The file, opened for reading; CoverageError when it changed since it was parsed or is gone."""
        try:
            fh = open(self.path, "rb")  # noqa: SIM115 - returned to the caller's with-block
        except OSError as exc:
            raise CoverageError(f"cannot read coverage file {str(self.path)!r}: {exc.strerror or exc}") from exc
        st = os.fstat(fh.fileno())
        if st.st_size != self.size or st.st_mtime_ns != self.mtime_ns:
            fh.close()
            raise CoverageError(
                f"coverage file {str(self.path)!r} changed while it was being analysed; "
                f"run the analysis again once the file is complete"
            )
        return fh

    def read(self, sections: Iterable[GoSection]) -> list[bytes]:
        """The bytes of each section, in order (one open of the file)."""
        with self.open() as fh:
            out = []
            for sec in sections:
                fh.seek(sec.offset)
                out.append(fh.read(sec.length))
            return out

    def line_at(self, offset: int) -> int:
        """The 1-based line number of a byte offset (error messages only: it reads the file up to there)."""
        line = 1
        try:
            with open(self.path, "rb") as fh:
                while offset > 0:
                    piece = fh.read(min(offset, CHUNK))
                    if not piece:
                        break
                    line += piece.count(b"\n")
                    offset -= len(piece)
        except OSError:
            pass
        return line


def _read_sections(fd: FileData) -> list[tuple[GoProfile, int, bytes]]:
    """(profile, lines, bytes) of every section of a Go file, one open per profile."""
    by_profile: dict[int, tuple[GoProfile, list[GoSection]]] = {}
    for sec in fd.go_sections:
        by_profile.setdefault(id(sec.profile), (sec.profile, []))[1].append(sec)
    out = []
    for profile, secs in by_profile.values():
        for sec, text in zip(secs, profile.read(secs), strict=True):
            out.append((profile, sec.lines, text))
    return out


def _moved(fd: FileData, profile: GoProfile) -> CoverageError:
    return CoverageError(
        f"coverage file {str(profile.path)!r} no longer holds the blocks of {fd.name!r} where it did; "
        f"run the analysis again"
    )


def _section_tokens(fd: FileData) -> tuple[list[bytes], list[bytes], list[bytes]]:
    """Position (`sl.sc,el.ec`), statement and count tokens of every block line of a Go file, in profile order."""
    positions: list[bytes] = []
    w_toks: list[bytes] = []
    h_toks: list[bytes] = []
    for profile, lines, text in _read_sections(fd):
        toks = text.split()
        named = toks[0::3]
        colon = text.rfind(b":", 0, text.find(b" "))
        head = text[: colon + 1]
        if (
            colon < 0
            or len(named) != lines
            or len(toks) != 3 * lines
            or not (min(named).startswith(head) and max(named).startswith(head))
        ):
            raise _moved(fd, profile)
        positions.extend(map(itemgetter(slice(len(head), None)), named))
        w_toks.extend(toks[1::3])
        h_toks.extend(toks[2::3])
    return positions, w_toks, h_toks


def _flags(h_toks: list[bytes]) -> bytes:
    """1 for every executed block (count > 0), else 0."""
    h_join = b"".join(h_toks)
    if len(h_join) == len(h_toks):
        return h_join.translate(_DIGIT_FLAGS)
    return bytes(map(bool, map(int, h_toks)))


def _unique_blocks(positions: list[bytes], w_toks: list[bytes], flags: bytes) -> tuple[list[bytes], list[bytes], bytes]:
    """Each block once (its first statement count kept), executed when any of its lines says so."""
    weights = dict(zip(reversed(positions), reversed(w_toks), strict=True))  # the first occurrence wins
    order = list(dict.fromkeys(positions))
    executed = set(compress(positions, flags))
    return order, [weights[p] for p in order], bytes(map(executed.__contains__, order))


def _go_totals(fd: FileData) -> tuple[int, int, int]:
    """(measured, covered, blocks) of a Go file whose sections may repeat blocks."""
    positions, w_toks, h_toks = _section_tokens(fd)
    order, weights, flags = _unique_blocks(positions, w_toks, _flags(h_toks))
    try:
        w = list(map(int, weights))
    except ValueError as exc:
        raise CoverageError(f"statement counts of {fd.name!r} are malformed: {exc}; regenerate the profile") from exc
    return sum(w), sum(compress(w, flags)), len(order)


def _go_index(fd: FileData, text: bytes | None) -> Index:
    """The sorted index of a Go file's blocks (`text`: its single section, when already read)."""
    if not fd.repeated and len(fd.go_sections) == 1:
        if text is None:
            (text,) = fd.go_sections[0].profile.read(fd.go_sections)
        fast = _positions_bulk(text, fd.go_sections[0].lines)
        if fast is not None:
            return _sorted_index(*fast)
    positions, w_toks, h_toks = _section_tokens(fd)
    flags = _flags(h_toks)
    if fd.repeated:
        positions, _w, flags = _unique_blocks(positions, w_toks, flags)
    try:
        parts = b" ".join(positions).translate(_POS_SPLIT).split()
        if len(parts) != 4 * len(positions):
            raise ValueError("expected 'line.col,line.col'")
        starts, ends = list(map(int, parts[0::4])), list(map(int, parts[2::4]))
        if starts and min(starts) < 1:
            raise ValueError("line 0")
    except ValueError as exc:
        where = str(fd.go_sections[0].profile.path)
        raise CoverageError(
            f"block positions of {fd.name!r} in {where!r} are malformed ({exc}); regenerate the profile"
        ) from exc
    return _sorted_index(starts, ends, flags)


def _lanes(text: bytes, lines: int) -> tuple[memoryview, int, int] | None:
    """One run of block lines, reversed, as 8-byte lanes: (the lanes, fields per line, fields the file name leaves).

    Field f of line L sits at lane (lines - 1 - L) * per_line + per_line - 1 - f. None when a field
    is longer than 7 characters or a line holds other characters (see `_positions_bulk`).
    """
    eol = text.find(b"\n")
    first = text if eol < 0 else text[:eol]
    colon = first.rfind(b":", 0, first.find(b" "))
    if colon < 0 or not lines:
        return None
    head = first[: colon + 1]
    head_fields = head.translate(_SEP_TABS, _NOT_SEP_DIGITS)
    k = head_fields.count(b"\t")  # fields the file name leaves: one per separator in it
    per_line = k + 6
    fields = text.translate(_SEP_TABS, _NOT_SEP_DIGITS)
    # Only the file names may lose characters: anything else in a line would shift its fields.
    if len(text) - len(fields) != (len(head) - len(head_fields)) * lines:
        return None
    # Each field must end with a tab once reversed; the trailing newline's tab moves to the end.
    rev = fields[-2::-1] + b"\t" if fields.endswith(b"\t") else fields[::-1] + b"\t"
    expanded = rev.expandtabs(8)
    if len(expanded) != 8 * per_line * lines:
        return None
    return memoryview(expanded).cast("Q"), per_line, k


def _positions_bulk(text: bytes, lines: int) -> tuple[list[int], list[int], bytes] | None:
    """Start lines, end lines and executed flags of one run of block lines, with no per-number Python work.

    Every separator becomes a tab and everything but digits goes; reversed, each field ends in
    a tab, so `expandtabs(8)` gives every field 8 bytes: its digits reversed (units first) and
    space padding. Strided views pick the wanted fields and a few big-integer operations turn
    eight little-endian decimal digits into one 64-bit integer at a time (SWAR). None (use the
    slow path) when a field is longer than 7 characters or a line holds other characters.
    """
    laid = _lanes(text, lines)
    if laid is None:
        return None
    view, per_line, k = laid
    n = lines
    # Reversed: field f of line L sits at lane (n - 1 - L) * per_line + per_line - 1 - f.
    values = _decimal_lanes(view[per_line - 1 - k :: per_line].tobytes() + view[per_line - 3 - k :: per_line].tobytes())
    x = int.from_bytes(view[0::per_line].tobytes().translate(_LANE_DIGITS), "little")
    x |= x >> 32
    x |= x >> 16
    x |= x >> 8
    flags = x.to_bytes(8 * n, "little")[8 * (n - 1) :: -8].translate(_NONZERO)
    starts = values[n - 1 :: -1]
    ends = values[2 * n - 1 : n - 1 : -1]
    if 0 in starts:
        return None
    return starts, ends, flags


_LANE_MAX = 10**7  # a field of 8 or more characters does not fit a lane (see _positions_bulk)


_KEYS: dict[int, int] = {}
_VALUES: dict[int, int] = {}
_CACHED = 1 << 16  # line numbers cached both ways (bounded: at most this many entries each)


def _lane_key(n: int) -> int:
    """A line number as `_lane_positions` gives it: ASCII digits, units first, space-padded; order-preserving."""
    key = _KEYS.get(n)
    if key is None:
        if n >= _LANE_MAX:
            return 1 << 64  # above every lane
        key = int.from_bytes(str(max(n, 0))[::-1].encode().ljust(8), "little")
        if len(_KEYS) < _CACHED:
            _KEYS[n] = key
    return key


def _lane_value(key: int) -> int:
    """The line number of a lane key."""
    n = _VALUES.get(key)
    if n is None:
        n = int(key.to_bytes(8, "little")[::-1].strip() or b"0")  # an empty field reads as line 0
        if len(_VALUES) < _CACHED:
            _VALUES[key] = n
    return n


def _lane_positions(text: bytes, lines: int) -> tuple[list[int], list[int]] | None:
    """Start and end lines of one run of block lines as lane keys, in profile order (no decimal decoding).

    The first steps of `_positions_bulk`: each field becomes an 8-byte lane holding its ASCII digits
    units first, space-padded. Read as a little-endian integer, a lane orders like the number it
    holds (a space sorts below every digit, so a longer number has the larger top byte), so
    comparisons with `_lane_key` bounds need no conversion; only the few blocks kept are decoded.
    None when a field does not fit a lane or a line holds other characters.
    """
    laid = _lanes(text, lines)
    if laid is None:
        return None
    view, per_line, k = laid
    if sys.byteorder == "little":
        # The lanes as they lie: no copy, translation or array; lines come reversed.
        return view[per_line - 1 - k :: per_line].tolist()[::-1], view[per_line - 3 - k :: per_line].tolist()[::-1]
    starts = array("Q", view[per_line - 1 - k :: per_line].tobytes())
    ends = array("Q", view[per_line - 3 - k :: per_line].tobytes())
    starts.byteswap()
    ends.byteswap()
    starts.reverse()
    ends.reverse()
    return starts.tolist(), ends.tolist()


_MASKS: dict[int, tuple[int, int, int]] = {}


def _lane_masks(lanes: int) -> tuple[int, int, int]:
    """Masks of the low byte of every 16-bit, low half of every 32-bit and 64-bit lane."""
    cap = 64
    while cap < lanes:
        cap *= 2
    masks = _MASKS.get(cap)
    if masks is None:
        masks = (
            int.from_bytes(b"\xff\x00" * (4 * cap), "little"),
            int.from_bytes(b"\xff\xff\x00\x00" * (2 * cap), "little"),
            int.from_bytes(b"\xff\xff\xff\xff\x00\x00\x00\x00" * cap, "little"),
        )
        if cap <= 1 << 16:  # at most 1.5 MB of cached masks
            _MASKS[cap] = masks
    return masks


def _decimal_lanes(lanes: bytes) -> list[int]:
    """Values of 8-byte lanes holding decimal digits, units first, space-padded (SWAR, little-endian)."""
    n = len(lanes) // 8
    m8, m16, m32 = _lane_masks(n)
    x = int.from_bytes(lanes.translate(_LANE_DIGITS), "little")
    # Each step folds pairs of lanes: (low + 10**k * high) appears in the high part of low * 10**k
    # + high * 2**w; no partial sum overflows its lane, so lanes never carry into each other.
    x = ((x * 266) >> 8) & m8  # 266 = 256 + 10: two digits per 16-bit lane
    x = ((x * 65636) >> 16) & m16  # 65636 = 2**16 + 100: four digits per 32-bit lane
    x = ((x * 4294977296) >> 32) & m32  # 2**32 + 10**4: eight digits per 64-bit lane
    values = array("Q")
    values.frombytes(x.to_bytes(8 * n, "little"))
    if sys.byteorder != "little":
        values.byteswap()
    return values.tolist()


_RUN = re.compile(rb"((?:[A-Za-z]:)?[^\n:]*+:).*+\n(?:\1.*+\n)*+")
"""A run of consecutive lines naming one file (group 1: the name and its colon), one C-level match."""


def join_run(changed: ChangedBlocks, name: bytes, text: bytes, toks: list[bytes], flags: bytes, nlines: int) -> None:
    """Add the blocks of one run of a file's lines (`toks`: its split text) that meet `changed`'s ranges.

    ValueError when a block position is malformed.
    """
    fast = _lane_positions(text, nlines)
    if fast is not None:
        changed.add(toks[0::3], fast[0], fast[1], flags, lanes=True)
        return
    head_len = len(name) + 1
    parts = b" ".join([t[head_len:] for t in toks[0::3]]).translate(_POS_SPLIT).split()
    if len(parts) != 4 * nlines:
        raise ValueError("expected 'line.col,line.col'")
    starts, ends = list(map(int, parts[0::4])), list(map(int, parts[2::4]))
    if min(starts) < 1:
        raise ValueError("line 0")
    changed.add(toks[0::3], starts, ends, flags, lanes=False)


class _GoReader:
    """Parse a coverprofile stream piece by piece; keep per file only totals and where its lines are."""

    def __init__(self, profile: GoProfile, want: WantRanges | None = None) -> None:
        self.profile = profile
        self.want = want
        self.source = str(profile.path)
        self.mode: bytes | None = None
        self.mode_offset = 0
        self.files: dict[bytes, FileData] = {}
        self.offset = 0  # file offset of the current buffer
        self.entries = 0

    def error(self, message: str, pos: int = 0) -> CoverageError:
        """`message` at the line holding buffer offset `pos`."""
        return CoverageError(f"{self.source}:{self.profile.line_at(self.offset + pos)}: {message}")

    def feed(self, buf: bytes, stop: int) -> None:
        """Parse the complete lines of buf[:stop] (it ends with a newline)."""
        pos = 0
        hint = 1 << 14
        find = buf.find
        rfind = buf.rfind
        while pos < stop:
            eol = find(b"\n", pos, stop)
            colon = rfind(b":", pos, eol)
            if colon >= 0:
                head = buf[pos : colon + 1]
                prefix = b"\n" + head
                # The run of lines naming this file ends after the last occurrence of the prefix in
                # a window that grows until the run provably ends inside it. Lines of other files
                # in between (the file listed again later) fail the check in `_run`.
                window = hint
                while True:
                    hi = pos + window
                    if hi > stop:
                        hi = stop
                    last = rfind(prefix, pos, hi)
                    end = eol + 1 if last < 0 else find(b"\n", last + 1) + 1
                    if end - 1 + len(prefix) <= hi or hi == stop:
                        break
                    window *= 4
                text = buf[pos:end]
                if head != b"mode:" and self._run(head, text, text.split(), pos, proven=False):
                    hint = end - pos + ((end - pos) >> 2) + 256
                    pos = end
                    continue
            # A mode line, another file's line inside the window, or a bad line: the regex finds
            # the exact run of lines starting with this line's name.
            m = _RUN.match(buf, pos, stop)
            if m is None:
                line = buf[pos:eol]
                if not line.strip():
                    pos = eol + 1
                    continue
                raise self.error(
                    f"not a coverprofile line: {_show(line)}; expected 'file.go:line.col,line.col statements count'",
                    pos,
                )
            end = m.end()
            text = buf[pos:end]
            if m.group(1) == b"mode:":
                self._mode_lines(text, pos)
            else:
                self._run(m.group(1), text, text.split(), pos, proven=True)
            pos = end

    def _mode_lines(self, text: bytes, pos: int) -> None:
        for line in text.splitlines():
            mode = line[5:].strip()
            if mode not in _GO_MODES:
                raise self.error(f"unknown mode {mode.decode(errors='replace')!r}; expected set, count or atomic", pos)
            if self.mode is None:
                self.mode = mode
                self.mode_offset = self.offset + pos
            elif mode != self.mode:
                raise self.error(
                    f"mixed modes: 'mode: {mode.decode()}' after 'mode: {self.mode.decode()}' "
                    f"(line {self.profile.line_at(self.mode_offset)}); profiles merged into one file must use "
                    f"the same -covermode — rerun with one mode",
                    pos,
                )
            pos += len(line) + 1

    def _run(self, head: bytes, text: bytes, toks: list[bytes], pos: int, *, proven: bool) -> bool:
        """Count one run of a file's block lines; False when a line does not start with `head`.

        `proven`: the regex already showed that every line starts with `head`.
        """
        if self.mode is None:
            raise self.error(
                "block line before any 'mode:' line; a Go coverprofile starts with 'mode: set|count|atomic'", pos
            )
        nlines = len(toks) // 3
        if not proven:
            # Every position token starts with `head` exactly when the smallest and the largest do.
            named = toks[0::3]
            if len(toks) % 3 or not (min(named).startswith(head) and max(named).startswith(head)):
                return False
        w_toks = toks[1::3]
        h_toks = toks[2::3]
        w_join = b"".join(w_toks)
        h_join = b"".join(h_toks)
        # Three tokens a line, the last two digits: a missing or extra token shifts a name into them.
        if len(toks) % 3 or not h_join.isdigit() or not w_join.isdigit():
            self._bad_line(text, pos)
        weights = w_join.translate(_DIGIT_VALUES) if len(w_join) == nlines else list(map(int, w_toks))
        flags = h_join.translate(_DIGIT_FLAGS) if len(h_join) == nlines else bytes(map(bool, map(int, h_toks)))
        self.entries += nlines
        name = head[:-1]
        section = GoSection(self.profile, self.offset + pos, len(text), nlines)
        fd = self.files.get(name)
        if fd is None:
            fd = self.files[name] = FileData(name="", unit="statements", go_sections=[section])
            if self.want is not None:
                ranges = self.want(name.decode("utf-8", errors="replace"))
                if ranges:
                    fd.changed = ChangedBlocks(ranges)
        else:
            fd.go_sections.append(section)
            fd.repeated = True
        if nlines > 1 and toks[0] in toks[3::3]:
            # A block listed twice in one run: a file's section repeated back to back (one per test binary).
            fd.repeated = True
        if fd.changed is not None:
            self._join(fd.changed, name, text, toks, flags, nlines, pos)
        m, c = fd.go_totals
        fd.go_totals = (m + sum(weights), c + sum(compress(weights, flags)))
        fd.go_blocks += nlines
        return True

    def _join(
        self, changed: ChangedBlocks, name: bytes, text: bytes, toks: list[bytes], flags: bytes, nlines: int, pos: int
    ) -> None:
        """Keep the blocks of this run that meet the file's changed lines (the text is in memory: no second read)."""
        try:
            join_run(changed, name, text, toks, flags, nlines)
        except ValueError as exc:
            shown = name.decode("utf-8", errors="replace")
            raise self.error(
                f"block positions of {shown!r} are malformed ({exc}); regenerate the profile", pos
            ) from exc

    def _bad_line(self, text: bytes, pos: int) -> None:
        at = pos
        for line in text.split(b"\n"):
            if line and not _GO_LINE.match(line):
                raise self.error(
                    f"not a coverprofile line: {_show(line)}; expected 'file.go:line.col,line.col statements count'",
                    at,
                )
            at += len(line) + 1
        raise self.error("malformed coverprofile lines", pos)

    def finish(self) -> CoverageData:
        data = CoverageData(source=self.source, format=GO, mode=self.mode.decode() if self.mode else None)
        data.entries_read = self.entries
        for raw_name, fd in self.files.items():
            fd.name = raw_name.decode("utf-8", errors="replace")
            if fd.repeated:
                m, c, blocks = _go_totals(fd)
                fd.go_totals = (m, c)
                fd.go_blocks = blocks
            data.files[fd.name] = fd
        self.files = {}
        return data


def merge_files(a: FileData, b: FileData) -> FileData:
    """What two reports say about one file: a block or line counts once, covered when either covers it."""
    if a.is_go and b.is_go:
        out = FileData(name=a.name, unit="statements", go_sections=a.go_sections + b.go_sections, repeated=True)
        if a.changed is not None and b.changed is not None and a.changed.ranges == b.changed.ranges:
            out.changed = a.changed.merge(b.changed)
        m, c, blocks = _go_totals(out)
        out.go_totals = (m, c)
        out.go_blocks = blocks
        return out
    if a.is_go or b.is_go:
        raise CoverageError(f"{a.name!r} appears as a Go profile and as a line report; pass one of them")
    return merge_line_files(a, b)


def read_go_profile(
    path: Path,
    chunk_size: int = CHUNK,
    want: WantRanges | None = None,
    keys: Mapping[str, Ranges] | None = None,
    native: bool | None = None,
) -> CoverageData:
    """Read a Go coverprofile (set, count or atomic; several concatenated profiles merge), streaming.

    `want`: the changed line ranges of a file named as in the profile (asked once per file); the
    blocks meeting them are collected in the same pass (`FileData.changed`), so joining coverage
    with a diff needs no second read of the profile. `keys`: the same ranges by candidate profile
    name (or a path the name ends with), for the compiled helper (`covnative`), which reads a big
    profile (`native` None) or any profile (`native` True) when it can; `native` False: Python only.
    """
    if native is not False:
        from .covnative import NATIVE_MIN_BYTES, read_go_profile_native

        try:
            big = os.stat(path).st_size >= NATIVE_MIN_BYTES
        except OSError:
            big = False  # the Python reader reports it
        if native or big:
            data = read_go_profile_native(path, want, keys)
            if data is not None:
                return data
    source = str(path)
    try:
        with open(path, "rb") as fh, paused_gc():
            st = os.fstat(fh.fileno())
            reader = _GoReader(GoProfile(path, st.st_size, st.st_mtime_ns), want)
            pending = b""
            while True:
                chunk = fh.read(chunk_size)
                if not chunk:
                    break
                buf = pending + chunk if pending else chunk
                # Keep the last run of lines (and any partial line) for the next piece, so a file
                # cut by the piece boundary is one run, not two that look like repeated sections.
                cut = _last_run_start(buf, buf.rfind(b"\n") + 1)
                if cut == 0 and len(buf) > 4 * chunk_size:
                    cut = buf.rfind(b"\n") + 1  # one file's run longer than 4 pieces: split it
                    if cut == 0:
                        raise CoverageError(
                            f"{source}: a line longer than {len(buf)} bytes; this is not a Go coverprofile"
                        )
                if cut:
                    reader.feed(buf, cut)
                    reader.offset += cut
                pending = buf[cut:]
            if pending:
                if not pending.endswith(b"\n"):
                    pending += b"\n"
                reader.feed(pending, len(pending))
    except OSError as exc:
        raise CoverageError(f"cannot read coverage file {source!r}: {exc.strerror or exc}") from exc
    if reader.mode is None:
        raise CoverageError(
            f"Go coverage profile {source!r} has no 'mode:' line; write it with `go test -coverprofile=FILE`"
        )
    data = reader.finish()
    if not data.files:
        data.notes.append(empty_profile_note(source))
    return data


def empty_profile_note(source: str) -> str:
    return (
        f"{source} holds no coverage blocks: no package with statements was built with coverage "
        f"(check -coverpkg and that tests ran)"
    )


def _last_run_start(buf: bytes, stop: int) -> int:
    """Offset of the first line of the trailing run of lines of buf[:stop] naming the same file."""
    if stop == 0:
        return 0
    start = buf.rfind(b"\n", 0, stop - 1) + 1
    colon = buf.find(b":", start, stop)
    if colon < 0:
        return start
    head = buf[start : colon + 1]
    # Walk back over whole lines with the same name (a run is a few hundred lines at most).
    pos = start
    while pos > 0:
        prev = buf.rfind(b"\n", 0, pos - 1) + 1
        if buf.startswith(head, prev):
            pos = prev
        else:
            break
    return pos


# -- XML (Cobertura, JaCoCo) ------------------------------------------------------------------


def _refuse_entities(path: Path) -> None:
    """Refuse a DOCTYPE that declares entities: libxml2 expands internal ones in attributes regardless."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(1 << 16)
    except OSError as exc:
        raise CoverageError(f"cannot read coverage file {str(path)!r}: {exc.strerror or exc}") from exc
    if b"<!ENTITY" in head:
        raise CoverageError(
            f"{str(path)!r} declares XML entities in its DOCTYPE; coverage reports never need them, "
            f"so it is refused (regenerate the report with the coverage tool)"
        )


def _iterparse(path: Path, tags: tuple[str, ...]) -> Any:
    from lxml import etree

    _refuse_entities(path)
    return etree.iterparse(
        str(path),
        events=("end",),
        tag=tags,
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=True,
        remove_comments=True,
    )


def _xml_error(path: Path, exc: Exception, fmt: str) -> CoverageError:
    return CoverageError(f"{str(path)!r} is not readable {fmt} XML: {exc}; regenerate the report")


def _clear(el: Any) -> None:
    el.clear()
    parent = el.getparent()
    if parent is not None:
        while el.getprevious() is not None:
            del parent[0]


def _line_file(name: str, lines: list[int], hits: list[bool], old: FileData | None) -> FileData:
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
    starts = array("I", lines)
    return FileData(
        name=name,
        unit="lines",
        starts_list=starts,
        ends_list=starts,
        weights=bytes([1]) * len(lines),
        flags=bytes(hits),
    )


def read_cobertura(path: Path) -> CoverageData:
    """Read Cobertura XML (coverage.py, gocover-cobertura, ...): one parse event per <class>."""
    from lxml import etree

    data = CoverageData(source=str(path), format=COBERTURA)
    pending: dict[str, tuple[list[int], list[bool]]] = {}
    try:
        for _event, el in _iterparse(path, ("source", "class")):
            if el.tag == "source":
                if el.text and el.text.strip():
                    data.sources.append(el.text.strip())
                continue
            filename = el.get("filename")
            if filename:
                lines_el = el.find("lines")
                if lines_el is not None:
                    nums: list[int] = []
                    hits: list[bool] = []
                    for ln in lines_el.iterchildren("line"):
                        nums.append(int(ln.get("number")))
                        hits.append(ln.get("hits", "0") not in ("0", "0.0"))
                    slot = pending.setdefault(filename.replace("\\", "/"), ([], []))
                    slot[0].extend(nums)
                    slot[1].extend(hits)
                    data.entries_read += len(nums)
            _clear(el)
    except etree.XMLSyntaxError as exc:
        raise _xml_error(path, exc, "Cobertura") from exc
    except (TypeError, ValueError) as exc:
        raise CoverageError(f"{str(path)!r}: a <line> has a missing or non-numeric number/hits ({exc})") from exc
    for name, (nums, hits) in pending.items():
        data.files[name] = _line_file(name, nums, hits, None)
    if not data.files:
        data.notes.append(f"{path} lists no classes with lines")
    return data


def read_jacoco(path: Path) -> CoverageData:
    """Read JaCoCo XML: a <sourcefile> per file (package path + name), lines covered when ci > 0."""
    from lxml import etree

    data = CoverageData(source=str(path), format=JACOCO)
    package = ""
    methods: dict[str, list[tuple[str, int, int, bool]]] = {}
    try:
        for event, el in _iterparse_jacoco(path):
            if event == "start":
                if el.tag == "package":
                    package = el.get("name", "")
                continue
            if el.tag == "class":
                src = el.get("sourcefilename")
                for m in el.iterchildren("method"):
                    line = int(m.get("line", "0") or 0)
                    covered = any(
                        c.get("type") == "INSTRUCTION" and int(c.get("covered", "0")) > 0
                        for c in m.iterchildren("counter")
                    )
                    if src and line:
                        methods.setdefault(f"{package}/{src}" if package else src, []).append(
                            (m.get("name", "?"), line, 0, covered)
                        )
            elif el.tag == "sourcefile":
                name = f"{package}/{el.get('name')}" if package else str(el.get("name"))
                nums: list[int] = []
                hits: list[bool] = []
                for ln in el.iterchildren("line"):
                    nums.append(int(ln.get("nr")))
                    hits.append(int(ln.get("ci", "0")) > 0)
                data.entries_read += len(nums)
                fd = _line_file(name, nums, hits, data.files.get(name))
                fd.functions = methods.pop(name, [])
                data.files[name] = fd
                _clear(el)
    except etree.XMLSyntaxError as exc:
        raise _xml_error(path, exc, "JaCoCo") from exc
    except (TypeError, ValueError) as exc:
        raise CoverageError(f"{str(path)!r}: a <line> has a missing or non-numeric nr/ci ({exc})") from exc
    return data


def _iterparse_jacoco(path: Path) -> Any:
    from lxml import etree

    _refuse_entities(path)
    return etree.iterparse(
        str(path),
        events=("start", "end"),
        tag=("package", "class", "sourcefile"),
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=True,
    )


# -- LCOV -----------------------------------------------------------------------------------


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
                    nums.append(int(parts[0]))
                    hits.append(int(float(parts[1])) > 0)
                elif line.startswith("SF:"):
                    name = line[3:].replace("\\", "/")
                    nums, hits, fn_lines, fn_hits = [], [], {}, {}
                elif line.startswith("FN:"):
                    parts = line[3:].split(",")
                    if len(parts) >= 3:  # lcov 2: FN:start,end,name
                        fn_lines[parts[2]] = (int(parts[0]), int(parts[1]))
                    else:
                        fn_lines[parts[1]] = (int(parts[0]), 0)
                elif line.startswith("FNDA:"):
                    count, _, fname = line[5:].partition(",")
                    fn_hits[fname] = fn_hits.get(fname, False) or int(float(count)) > 0
                elif line == "end_of_record":
                    if name is None:
                        raise CoverageError(f"{path}:{lineno}: end_of_record without SF:; not an LCOV tracefile")
                    # Several records for one file (one per test name): covered when covered in any.
                    fd = _line_file(name, nums, hits, None)
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
        data.files[name] = _line_file(name, nums, hits, None)
    return data


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
