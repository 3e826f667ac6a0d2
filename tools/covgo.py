"""Read Go coverprofiles (set, count or atomic; several concatenated profiles merge), streaming.

Go profiles are read in bulk, not line by line: each run of consecutive lines naming one file is
found with a few C-level searches and checked and summed with C-level split/join/translate. Per
file only its totals and where its runs sit in the profile are kept (memory grows with files, not
blocks; a 1 GB profile streams in 4 MB pieces); block positions are read back from the profile
(`covgoblocks`) only for the files a caller queries. A big profile is read by the compiled helper
(`covnative`) when it can; this reader stays the authority.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from itertools import compress
from pathlib import Path

from .covgoblocks import CHUNK, GoProfile, GoSection, unique_block_totals
from .covgodecode import DIGIT_FLAGS, POS_SPLIT, lane_positions
from .covmodel import ChangedBlocks, CoverageData, FileData, paused_gc
from .covspans import Ranges, WantRanges
from .errors import CoverageError

GO = "go"

_GO_MODES = (b"set", b"count", b"atomic")
GO_LINE = re.compile(rb"^(?:[A-Za-z]:)?[^\n:]+:\d+\.\d+,\d+\.\d+ \d+ \d+\r?$")
"""One block line ("name:sl.sc,el.ec stmts count"; a Windows drive letter may precede the name)."""

_DIGIT_VALUES = bytes.maketrans(b"0123456789", bytes(range(10)))


def snippet(head: bytes, limit: int = 80) -> str:
    """The first `limit` bytes of `head` as quoted text for an error message ("…" when cut)."""
    return repr(head[:limit].decode("utf-8", errors="replace")) + ("…" if len(head) > limit else "")


# One match per run of consecutive lines naming the same file ("name:sl.sc,el.ec stmts count").
# Possessive quantifiers: no backtracking, so a run costs one pass in C. A Windows drive
# letter may precede the name.
_RUN = re.compile(rb"((?:[A-Za-z]:)?[^\n:]*+:).*+\n(?:\1.*+\n)*+")
"""A run of consecutive lines naming one file (group 1: the name and its colon), one C-level match."""


def join_run(changed: ChangedBlocks, name: bytes, text: bytes, toks: list[bytes], flags: bytes, nlines: int) -> None:
    """Add the blocks of one run of a file's lines (`toks`: its split text) that meet `changed`'s ranges.

    ValueError when a block position is malformed.
    """
    fast = lane_positions(text, nlines)
    if fast is not None:
        changed.add(toks[0::3], fast[0], fast[1], flags, lanes=True)
        return
    head_len = len(name) + 1
    parts = b" ".join([t[head_len:] for t in toks[0::3]]).translate(POS_SPLIT).split()
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
                    f"not a coverprofile line: {snippet(line)}; expected 'file.go:line.col,line.col statements count'",
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
        flags = h_join.translate(DIGIT_FLAGS) if len(h_join) == nlines else bytes(map(bool, map(int, h_toks)))
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
            if line and not GO_LINE.match(line):
                raise self.error(
                    f"not a coverprofile line: {snippet(line)}; expected 'file.go:line.col,line.col statements count'",
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
                m, c, blocks = unique_block_totals(fd)
                fd.go_totals = (m, c)
                fd.go_blocks = blocks
            data.files[fd.name] = fd
        self.files = {}
        return data


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
