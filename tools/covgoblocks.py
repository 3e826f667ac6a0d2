"""Where a Go file's block lines sit in its profile, and reading them back for the files a caller queries.

The Go reader keeps per file only its totals and its sections (offset, length, lines), so memory
grows with files, not blocks; block positions and counts are read back here, from a profile that
must not have changed since it was read. Blocks repeated across merged profiles count once.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import compress
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from .covgodecode import DIGIT_FLAGS, POS_SPLIT, positions_bulk
from .covspans import Index, sorted_index
from .errors import CoverageError

if TYPE_CHECKING:
    from .covmodel import FileData


CHUNK = 4 << 20
"""Bytes of a Go profile parsed at a time (a huge profile streams in pieces of this size)."""


@dataclass(slots=True)
class GoSection:
    """Where one run of a file's block lines sits in a Go profile (read again only when queried)."""

    profile: GoProfile
    offset: int
    length: int
    lines: int


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


def read_sections(fd: FileData) -> list[tuple[GoProfile, int, bytes]]:
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
    for profile, lines, text in read_sections(fd):
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


def executed_flags(h_toks: list[bytes]) -> bytes:
    """1 for every executed block (count > 0), else 0."""
    h_join = b"".join(h_toks)
    if len(h_join) == len(h_toks):
        return h_join.translate(DIGIT_FLAGS)
    return bytes(map(bool, map(int, h_toks)))


def _unique_blocks(positions: list[bytes], w_toks: list[bytes], flags: bytes) -> tuple[list[bytes], list[bytes], bytes]:
    """Each block once (its first statement count kept), executed when any of its lines says so."""
    weights = dict(zip(reversed(positions), reversed(w_toks), strict=True))  # the first occurrence wins
    order = list(dict.fromkeys(positions))
    executed = set(compress(positions, flags))
    return order, [weights[p] for p in order], bytes(map(executed.__contains__, order))


def unique_block_totals(fd: FileData) -> tuple[int, int, int]:
    """(measured, covered, blocks) of a Go file whose sections may repeat blocks."""
    positions, w_toks, h_toks = _section_tokens(fd)
    order, weights, flags = _unique_blocks(positions, w_toks, executed_flags(h_toks))
    try:
        w = list(map(int, weights))
    except ValueError as exc:
        raise CoverageError(f"statement counts of {fd.name!r} are malformed: {exc}; regenerate the profile") from exc
    return sum(w), sum(compress(w, flags)), len(order)


def go_index(fd: FileData, text: bytes | None) -> Index:
    """The sorted index of a Go file's blocks (`text`: its single section, when already read)."""
    if not fd.repeated and len(fd.go_sections) == 1:
        if text is None:
            (text,) = fd.go_sections[0].profile.read(fd.go_sections)
        fast = positions_bulk(text, fd.go_sections[0].lines)
        if fast is not None:
            return sorted_index(*fast)
    positions, w_toks, h_toks = _section_tokens(fd)
    flags = executed_flags(h_toks)
    if fd.repeated:
        positions, _w, flags = _unique_blocks(positions, w_toks, flags)
    try:
        parts = b" ".join(positions).translate(POS_SPLIT).split()
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
    return sorted_index(starts, ends, flags)
