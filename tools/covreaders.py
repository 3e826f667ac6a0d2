"""Streaming readers for coverage files: Go coverprofiles, Cobertura, LCOV and JaCoCo XML.

Every reader yields the same `CoverageData`: per file (named as the report names it;
`covmap` maps names to repository files) a list of *entries*, each an inclusive line
span with a weight (statements for Go, 1 for line formats) and a covered flag.
Line status follows one rule for every format (diff-cover's and Codecov's): a line
is measured when an entry spans it and covered only when every entry spanning it in
that report was executed, so a partially run line (`if err != nil {` whose body never
ran) counts as uncovered.

Go profiles are read in bulk, not line by line: one regex match per run of lines
for the same file, then C-level split/join/map over the run. Blocks repeated across
merged profiles (one section per test binary with `-coverpkg`) are counted once.
Memory per block is a few bytes (positions as one bytes blob, flags as bytes);
lines are parsed from the blob only for the files a caller asks about.
"""

from __future__ import annotations

import re
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import accumulate, compress
from operator import itemgetter
from pathlib import Path
from typing import IO, Any

from .errors import CoverageError

GO = "go"
COBERTURA = "cobertura"
LCOV = "lcov"
JACOCO = "jacoco"
FORMATS = (GO, COBERTURA, LCOV, JACOCO)

CHUNK = 4 << 20
"""Bytes of a Go profile parsed at a time (a huge profile streams in pieces of this size)."""
MAX_LINE = 1 << 20
"""A single profile line longer than this is not coverage data."""
SNIFF = 4096

_GO_MODES = (b"set", b"count", b"atomic")
# One match per run of consecutive lines naming the same file ("name:sl.sc,el.ec stmts count").
# Possessive quantifiers: no backtracking, so a run costs one pass in C. A Windows drive
# letter may precede the name.
_GO_RUN = re.compile(rb"((?:[A-Za-z]:)?[^\n:]*+):([^\n:]*+)\n(?:\1:[^\n:]*+\n)*+")
_GO_LINE = re.compile(rb"^(?:[A-Za-z]:)?[^\n:]+:\d+\.\d+,\d+\.\d+ \d+ \d+\r?$")
_POS_SPLIT = bytes.maketrans(b".,", b"  ")
_DIGIT_VALUES = bytes.maketrans(b"0123456789", bytes(range(10)))
_DIGIT_FLAGS = bytes.maketrans(b"0123456789", bytes([0] + [1] * 9))
_NOT_POS_CHARS = b"0123456789., \r"


@dataclass(slots=True)
class FileData:
    """The entries of one file in one report: line spans, weights and covered flags."""

    name: str
    unit: str = "lines"
    """"statements" (Go) or "lines" (line formats): what `weights` count."""
    blob: bytes = b""
    """Go: block positions `sl.sc,el.ec` joined by spaces (parsed lazily); empty for line formats."""
    starts_list: array[int] = field(default_factory=lambda: array("I"))
    ends_list: array[int] = field(default_factory=lambda: array("I"))
    weights: bytes | array[int] = b""
    flags: bytes = b""
    functions: list[tuple[str, int, int, bool]] = field(default_factory=list)
    """(name, first line, last line or 0, executed) where the report lists functions (LCOV, JaCoCo)."""
    _index: tuple[list[int], list[int], list[int]] | None = None

    @property
    def entries(self) -> int:
        return len(self.flags)

    def totals(self) -> tuple[int, int]:
        """(measured, covered) in `unit`."""
        w = self.weights
        return sum(w), sum(compress(w, self.flags))

    def spans(self) -> tuple[list[int], list[int]]:
        """Start and end line of every entry (parsed from the blob on first use for Go)."""
        if self.blob:
            parts = self.blob.translate(_POS_SPLIT).split()
            try:
                starts = list(map(int, parts[0::4]))
                ends = list(map(int, parts[2::4]))
            except ValueError as exc:
                raise CoverageError(f"block positions of {self.name!r} are malformed: {exc}") from exc
            if len(starts) != len(self.flags) or len(ends) != len(starts):
                raise CoverageError(f"block positions of {self.name!r} are malformed (expected sl.sc,el.ec)")
            return starts, ends
        return list(self.starts_list), list(self.ends_list)

    def line_index(self) -> tuple[list[int], list[int], list[int]]:
        """Entries sorted by start: (starts, ends, running max of ends) for range queries."""
        if self._index is None:
            starts, ends = self.spans()
            flags = self.flags
            order: list[int] | None = None
            if starts != sorted(starts):
                order = sorted(range(len(starts)), key=starts.__getitem__)
                starts = [starts[i] for i in order]
                ends = [ends[i] for i in order]
                self.flags = flags = bytes(flags[i] for i in order)
                w = self.weights
                self.weights = array("I", (w[i] for i in order))
            maxend = list(accumulate(ends, max))
            self._index = (starts, ends, maxend)
        return self._index

    def query(self, lo: int, hi: int) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """Measured and uncovered line spans within [lo, hi], each merged and sorted."""
        starts, ends, maxend = self.line_index()
        i = bisect_left(maxend, lo)
        j = bisect_right(starts, hi)
        flags = self.flags
        measured: list[tuple[int, int]] = []
        uncovered: list[tuple[int, int]] = []
        for k in range(i, j):
            e = ends[k]
            if e < lo:
                continue
            s = starts[k]
            span = (s if s > lo else lo, e if e < hi else hi)
            measured.append(span)
            if not flags[k]:
                uncovered.append(span)
        return merge_spans(measured), merge_spans(uncovered)


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
    return sum(e - s + 1 for s, e in spans)


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


def read_coverage(path: Path, fmt: str | None = None) -> CoverageData:
    """Read one coverage file in any supported format (sniffed unless given)."""
    fmt = fmt or sniff_format(path)
    if fmt == GO:
        return read_go_profile(path)
    if fmt == COBERTURA:
        return read_cobertura(path)
    if fmt == LCOV:
        return read_lcov(path)
    if fmt == JACOCO:
        return read_jacoco(path)
    raise CoverageError(f"unknown coverage format {fmt!r}; known: {', '.join(FORMATS)}")


# -- Go coverprofile -----------------------------------------------------------------------


@dataclass(slots=True)
class _GoRun:
    blob: bytes
    weights: bytes | array[int]
    flags: bytes


class _GoReader:
    """Parse a coverprofile stream chunk by chunk and merge repeated blocks."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.mode: bytes | None = None
        self.mode_line = 0
        self.runs: dict[bytes, list[_GoRun]] = {}
        self.lineno = 0  # lines consumed before the current buffer
        self.entries = 0

    def error(self, message: str, buf: bytes = b"", pos: int = 0) -> CoverageError:
        line = self.lineno + buf.count(b"\n", 0, pos) + 1
        return CoverageError(f"{self.source}:{line}: {message}")

    def feed(self, buf: bytes) -> None:
        """Parse complete lines (buf ends with a newline)."""
        pos = 0
        n = len(buf)
        hint = 1 << 14
        find = buf.find
        rfind = buf.rfind
        count = buf.count
        while pos < n:
            eol = find(b"\n", pos)
            colon = rfind(b":", pos, eol)
            if colon < 0 or eol == pos:
                line = buf[pos:eol]
                if not line.strip():
                    pos = eol + 1
                    continue
                raise self.error(
                    f"not a coverprofile line: {_show(line)}; expected 'file.go:line.col,line.col statements count'",
                    buf,
                    pos,
                )
            name = buf[pos:colon]
            prefix = b"\n" + buf[pos : colon + 1]
            # Find the run of lines naming this file: the last occurrence of the prefix in a
            # window that grows until the run provably ends inside it, then check that every
            # line in between belongs to the run (else let the regex find its end).
            end = 0
            window = hint
            while True:
                hi = pos + window
                if hi > n:
                    hi = n
                last = rfind(prefix, pos, hi)
                end = eol + 1 if last < 0 else find(b"\n", last + 1) + 1
                if end - 1 + len(prefix) <= hi or hi == n:
                    break
                window *= 4
            text = buf[pos:end]
            toks = text.split()
            nlines = len(toks) // 3
            if name == b"mode":
                if count(prefix, pos, end) == nlines - 1 and not len(toks) % 3:
                    self._mode_lines(text, buf, pos)
                    hint = 2 * (end - pos) + 256
                    pos = end
                    continue
            elif not len(toks) % 3 and self._run(name, text, toks, nlines, buf, pos):
                hint = 2 * (end - pos) + 256
                pos = end
                continue
            # Another file's line (or a malformed one) inside the window: let the regex find the run.
            m = _GO_RUN.match(buf, pos)
            if m is None or m.end() <= eol:
                end = eol + 1
                text = buf[pos:end]
                if not _GO_LINE.match(text.rstrip(b"\n")) and name != b"mode":
                    raise self.error(
                        f"not a coverprofile line: {_show(text.rstrip())}; "
                        f"expected 'file.go:line.col,line.col statements count'",
                        buf,
                        pos,
                    )
            else:
                end = m.end()
                text = buf[pos:end]
            toks = text.split()
            if name == b"mode":
                self._mode_lines(text, buf, pos)
            elif not self._run(name, text, toks, text.count(b"\n"), buf, pos):
                self._bad_line(text, buf, pos)
            pos = end
        self.lineno += count(b"\n")

    def _mode_lines(self, text: bytes, buf: bytes, pos: int) -> None:
        for i, line in enumerate(text.splitlines()):
            mode = line[5:].strip()
            if mode not in _GO_MODES:
                raise self.error(
                    f"unknown mode {mode.decode(errors='replace')!r}; expected set, count or atomic", buf, pos
                )
            if self.mode is None:
                self.mode = mode
                self.mode_line = self.lineno + buf.count(b"\n", 0, pos) + i + 1
            elif mode != self.mode:
                at = self.lineno + buf.count(b"\n", 0, pos) + i + 1
                raise CoverageError(
                    f"{self.source}:{at}: mixed modes: 'mode: {mode.decode()}' after 'mode: {self.mode.decode()}' "
                    f"(line {self.mode_line}); profiles merged into one file must use the same -covermode — "
                    f"rerun with one mode"
                )

    def _run(self, name: bytes, text: bytes, toks: list[bytes], nlines: int, buf: bytes, pos: int) -> bool:
        """Store one run; False when a line of another file sits inside it (the caller narrows the run)."""
        if self.mode is None:
            raise self.error(
                "block line before any 'mode:' line; a Go coverprofile starts with 'mode: set|count|atomic'", buf, pos
            )
        if len(toks) != 3 * nlines:
            self._bad_line(text, buf, pos)
        cut = len(name) + 1
        named = toks[0::3]
        # Every position token starts with "name:" exactly when the smallest and the largest do
        # (they bound the others lexicographically): a cheap proof that no other file's line is here.
        head = name + b":"
        if not (min(named).startswith(head) and max(named).startswith(head)):
            return False
        blob = b" ".join(map(itemgetter(slice(cut, None)), named))
        w_toks = toks[1::3]
        h_toks = toks[2::3]
        w_join = b"".join(w_toks)
        h_join = b"".join(h_toks)
        if not h_join.isdigit() or not w_join.isdigit() or blob.translate(None, _NOT_POS_CHARS):
            self._bad_line(text, buf, pos)
        weights: bytes | array[int]
        if len(w_join) == nlines:
            weights = w_join.translate(_DIGIT_VALUES)
        else:
            weights = array("I", map(int, w_toks))
        if len(h_join) == nlines:
            flags = h_join.translate(_DIGIT_FLAGS)
        else:
            flags = bytes(map(b"0".__ne__, h_toks))
        self.entries += nlines
        first = blob[: blob.find(b" ")] if nlines > 1 else b""
        if first and (b" " + first + b" " in blob or blob.endswith(b" " + first)):
            # A whole section repeated back to back (one file covered by several test binaries).
            blob, weights, flags = _dedupe(blob.split(b" "), weights, flags)
        self.runs.setdefault(name, []).append(_GoRun(blob, weights, flags))
        return True

    def _bad_line(self, text: bytes, buf: bytes, pos: int) -> None:
        for i, line in enumerate(text.split(b"\n")):
            if line and not _GO_LINE.match(line):
                at = pos + sum(len(x) + 1 for x in text.split(b"\n")[:i])
                raise self.error(
                    f"not a coverprofile line: {_show(line)}; expected 'file.go:line.col,line.col statements count'",
                    buf,
                    at,
                )
        raise self.error("malformed coverprofile lines", buf, pos)

    def finish(self) -> CoverageData:
        data = CoverageData(source=self.source, format=GO, mode=self.mode.decode() if self.mode else None)
        data.entries_read = self.entries
        for raw_name, runs in self.runs.items():
            run = runs[0]
            for other in runs[1:]:
                run = _merge_runs(run, other)
            name = raw_name.decode("utf-8", errors="replace")
            data.files[name] = FileData(
                name=name, unit="statements", blob=run.blob, weights=run.weights, flags=run.flags
            )
        self.runs.clear()
        return data


def _dedupe(pos_toks: list[bytes], weights: bytes | array[int], flags: bytes) -> tuple[bytes, array[int], bytes]:
    seen: dict[bytes, int] = {}
    order: list[bytes] = []
    w_out: list[int] = []
    f_out = bytearray()
    for p, w, f in zip(pos_toks, weights, flags, strict=True):
        k = seen.get(p)
        if k is None:
            seen[p] = len(order)
            order.append(p)
            w_out.append(w)
            f_out.append(f)
        elif f:
            f_out[k] = 1
    return b" ".join(order), array("I", w_out), bytes(f_out)


def _merge_runs(a: _GoRun, b: _GoRun) -> _GoRun:
    """Blocks present in both count once (covered when covered in either); the rest are added."""
    if a.blob == b.blob:
        return _GoRun(a.blob, a.weights, bytes(x | y for x, y in zip(a.flags, b.flags, strict=True)))
    a_pos = a.blob.split(b" ")
    index = {p: i for i, p in enumerate(a_pos)}
    flags = bytearray(a.flags)
    weights = array("I", iter(a.weights))
    extra: list[bytes] = []
    for p, w, f in zip(b.blob.split(b" "), b.weights, b.flags, strict=True):
        k = index.get(p)
        if k is None:
            index[p] = len(a_pos) + len(extra)
            extra.append(p)
            weights.append(w)
            flags.append(f)
        elif f:
            flags[k] = 1
    return _GoRun(b" ".join(a_pos + extra), weights, bytes(flags))


def iter_chunks(fh: IO[bytes], size: int = CHUNK) -> Iterator[bytes]:
    """Pieces of a stream that end at a newline (the last one gets one added)."""
    carry = b""
    while True:
        chunk = fh.read(size)
        if not chunk:
            if carry:
                yield carry if carry.endswith(b"\n") else carry + b"\n"
            return
        data = carry + chunk if carry else chunk
        cut = data.rfind(b"\n") + 1
        if cut == 0:
            if len(data) > MAX_LINE:
                raise CoverageError(f"a line longer than {MAX_LINE} bytes; this is not coverage data")
            carry = data
            continue
        carry = data[cut:]
        yield data[:cut] if cut < len(data) else data


def read_go_profile(path: Path, chunk_size: int = CHUNK) -> CoverageData:
    """Read a Go coverprofile (set, count or atomic; several concatenated profiles merge)."""
    source = str(path)
    reader = _GoReader(source)
    try:
        with open(path, "rb") as fh:
            pending = b""
            for chunk in iter_chunks(fh, chunk_size):
                # Keep the last run of a chunk for the next one, so a file cut by the chunk
                # boundary is one run, not two that look like repeated sections.
                buf = pending + chunk if pending else chunk
                tail = _last_run_start(buf)
                pending = buf[tail:]
                if tail:
                    reader.feed(buf[:tail])
                elif len(pending) > 4 * chunk_size:
                    reader.feed(pending)
                    pending = b""
            if pending:
                reader.feed(pending)
    except OSError as exc:
        raise CoverageError(f"cannot read coverage file {source!r}: {exc.strerror or exc}") from exc
    if reader.mode is None:
        raise CoverageError(
            f"Go coverage profile {source!r} has no 'mode:' line; write it with `go test -coverprofile=FILE`"
        )
    data = reader.finish()
    if not data.files:
        data.notes.append(
            f"{source} holds no coverage blocks: no package with statements was built with coverage "
            f"(check -coverpkg and that tests ran)"
        )
    return data


def _last_run_start(buf: bytes) -> int:
    """Offset of the first line of the trailing run of lines naming the same file."""
    end = len(buf) - 1
    start = buf.rfind(b"\n", 0, end) + 1
    colon = buf.rfind(b":", start, end)
    if colon < 0:
        return start
    prefix = b"\n" + buf[start : colon + 1]
    # Walk back over lines with the same prefix, a chunk at a time.
    pos = start
    while pos > 0:
        prev = buf.rfind(b"\n", 0, pos - 1) + 1
        if buf.startswith(prefix[1:], prev):
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
    if a.blob or b.blob:
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
