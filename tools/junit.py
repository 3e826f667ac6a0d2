"""Read JUnit XML from any common producer into the shared `TestReport`, streaming and hardened.

Reading path. JUnit files are untrusted and can be huge (a 200 MB `<system-out>`, a 2 GB nightly
file). They are fed in 64 KB chunks to lxml's libxml2 parser with `resolve_entities=False,
no_network=True, load_dtd=False, huge_tree=True` and a *parser target* (`_Target`: start/end/data
callbacks). No tree is built, so there is nothing to clear, and an element's text is kept only as a
bounded head and tail (`_Text`): a 200 MB `<system-out>` adds 2 MB of peak memory. A testcase without
children (one that passed) only parks the attribute dict lxml hands over; a testcase with children
(failure, skip, output, Surefire reruns) is worked out at its end tag and keeps its place in the batch.
Every 1024 testcases, and at each suite boundary, the batch goes to `_Accumulator.add_batch` in one
call, in document order, which adds it with comprehensions and dict operations that run in C.

Why not `iterparse` (which DESIGN.md names): measured side by side in `bench/bench_junit.py` on
100,000 testcases. The least an iterparse reader can do (tag filter in C so Python sees one event per
testcase and suite, attributes read in batches, earlier siblings deleted) costs 1.06-1.09x the bare
counting loop before any merging; the same through a parser target costs 0.90-0.92x, because lxml
builds the target's attribute dicts in C while each `el.get` is a Python call. A complete iterparse
reader with this accumulator measured 1.92x the floor against 1.67x for this one at the time. And
under iterparse libxml2 holds a single `<system-out>` whole until its element ends, so its size would
be the reader's peak memory. Memory here grows with the number of distinct tests (columns of names,
classes, outcomes and durations), not with the size of the file.

What junitparser is used for: not for reading, and by no module at run time. `JUnitXml.fromfile`
builds the whole tree (peak memory about 3x ours on 100k cases, and it grows with the file), and it has
no notion of reruns, Surefire `flakyFailure`/`rerunFailure`, Bazel suite-level output or trace
locations. It is the reference the tests cross-check our per-file counts against on every golden
fixture, and the speed and memory anchor of `bench/bench_junit.py`. Dialect knowledge lives in
`junit_dialects.py`.

Hardening, in order: (1) the prolog (everything before the root element, at most 1 MB) is scanned
before lxml sees a byte; a DOCTYPE that declares entities ("billion laughs", XXE) is refused there in
well under a millisecond, and so is a root element that is not `<testsuites>`/`<testsuite>`. This
matters because `huge_tree` also relaxes libxml2's own entity-amplification limits. (2) Characters
XML 1.0 forbids (raw control bytes such as ANSI colour escapes in captured output, `&#x1B;`-style
references, U+FFFE/U+FFFF) are replaced by U+FFFD by a streaming byte filter in front of the parser,
chunk by chunk, rather than `recover=True`, which would also hide truncated and corrupt files. (3) The
parser never expands entities or loads anything. (4) Text per element is bounded (above). (5) Location
patterns run on bounded text and cannot backtrack quadratically.

Reruns: testcases with the same class and name (suite and name when the class is empty, as jest-junit
writes), in one file or several, are one test with several attempts. The verdict: any pass plus any
failure → flaky; otherwise the last non-skipped attempt's outcome. Totals count tests; `attempts`
counts runs. Failure messages, locations and excerpts are worked out only for the failures returned
(`max_failures`); the counts always cover all of them.
"""

from __future__ import annotations

import codecs
import gc
import heapq
import re
import sys
from bisect import bisect_right
from collections.abc import Callable, Sequence
from itertools import groupby
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, cast

from pydantic import Field

from . import junit_dialects as dialects
from .errors import JUnitError, NotFoundError
from .models import (
    EXCERPT_LIMIT,
    SLOWEST_LIMIT,
    Attempt,
    CountsSource,
    Failure,
    Location,
    Model,
    Outcome,
    SuiteSummary,
    TestReport,
    TestResult,
    TestTiming,
    Totals,
    excerpt,
)

if TYPE_CHECKING:
    from .repo import Project

PROLOG_LIMIT = 1 << 20
"""Bytes allowed before the root element; a longer prolog is refused (no JUnit writer needs one)."""

JUNIT_ROOTS = ("testsuites", "testsuite")

_PASSED, _FAILED, _ERROR, _SKIPPED, _FLAKY = (
    Outcome.PASSED,
    Outcome.FAILED,
    Outcome.ERROR,
    Outcome.SKIPPED,
    Outcome.FLAKY,
)


class JUnitFile(Model):
    """One file that was read (or could not be)."""

    path: str
    """Relative to the project root when one was given."""
    dialect: str | None = None
    """The producer recognised: pytest-xunit1/2, go-junit-report, gotestsum, surefire, gradle, jest-junit, ..."""
    tests: int = 0
    """Testcase elements read from this file (attempts, before reruns are merged)."""
    suites: int = 0
    error: str | None = None
    notes: list[str] = Field(default_factory=list)


class JUnitParseResult(Model):
    """The merged report of a set of JUnit files, with what happened to each file."""

    report: TestReport
    files: list[JUnitFile] = Field(default_factory=list)
    errors: list[str] = Field(default_factory=list)
    """One message per file that could not be read (the others are still in the report)."""
    flaky: list[Failure] = Field(default_factory=list)
    """Tests that failed and then passed: the failing attempt's details."""
    failures_omitted: int = 0
    """Failures left out of `report.failures` by `max_failures` (counts stay complete)."""


# -- public API ------------------------------------------------------------------------------


def parse_junit_files(
    paths: Sequence[Path],
    *,
    root: Path | None = None,
    keep_tests: bool = True,
    max_failures: int | None = None,
) -> JUnitParseResult:
    """Read JUnit files into one report; a file that fails is reported and never stops the others."""
    root = root.resolve() if root is not None else None
    acc = _Accumulator(root)
    # Reading allocates many objects but makes no garbage cycles worth collecting mid-read; pausing the cyclic
    # collector spares it repeated scans of the growing test columns (about 5% of the time on 100k testcases).
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _parse(paths, acc, root, keep_tests=keep_tests, max_failures=max_failures)
    finally:
        if gc_was_enabled:
            gc.enable()


def _parse(
    paths: Sequence[Path], acc: _Accumulator, root: Path | None, *, keep_tests: bool, max_failures: int | None
) -> JUnitParseResult:
    files: list[JUnitFile] = []
    errors: list[str] = []
    for path in paths:
        entry = JUnitFile(path=_display(path, root))
        files.append(entry)
        try:
            _read_file(Path(path), entry, acc)
        except JUnitError as exc:
            entry.error = str(exc)
            errors.append(str(exc))
    report, flaky, omitted = acc.finish(keep_tests=keep_tests, max_failures=max_failures)
    return JUnitParseResult(report=report, files=files, errors=errors, flaky=flaky, failures_omitted=omitted)


_GLOB_CHARS = re.compile(r"[*?\[]")


def parse_junit_paths(
    project: Project,
    patterns: list[str],
    *,
    keep_tests: bool = True,
    max_failures: int | None = None,
) -> JUnitParseResult:
    """Resolve files and globs inside the project (escapes refused, empty globs an error) and read them."""
    if not patterns:
        raise NotFoundError("no JUnit paths given; pass files or globs such as 'build/test-results/**/*.xml'")
    found: dict[Path, None] = {}
    for pattern in patterns:
        anchored = project.resolve_path(pattern, what="JUnit path")
        if not _GLOB_CHARS.search(pattern):
            found[anchored] = None  # a missing literal file is reported per file, like a corrupt one
            continue
        rel = anchored.relative_to(project.root).as_posix() if anchored != project.root else "."
        matches = sorted(m for m in project.root.glob(rel) if m.is_file())
        if not matches:
            raise NotFoundError(
                f"glob {pattern!r} matches no file under {project.root}; check the pattern "
                f"(use '**/' to search folders, e.g. 'reports/**/*.xml')"
            )
        for match in matches:
            found[project.resolve_path(str(match), what="JUnit path")] = None
    return parse_junit_files(list(found), root=project.root, keep_tests=keep_tests, max_failures=max_failures)


def run_junit_paths(project: Project, run_id: str) -> list[Path]:
    """The JUnit files a run left in its run folder (`.itest/runs/<id>/*.xml`)."""
    if not run_id or "/" in run_id or "\\" in run_id or run_id.startswith((".", "-")):
        raise NotFoundError(f"run id {run_id!r} is not valid; pass a run id as a run_phase result shows it")
    run_dir = project.root / ".itest" / "runs" / run_id
    if not run_dir.is_dir():
        raise NotFoundError(f"no run {run_id!r}: {project.rel(run_dir)} does not exist; run a phase first")
    xml = sorted(p for p in run_dir.glob("*.xml") if p.is_file())
    if not xml:
        raise NotFoundError(f"run {run_id!r} left no JUnit XML in {project.rel(run_dir)}")
    return xml


def _display(path: Path, root: Path | None) -> str:
    if root is not None:
        try:
            return Path(path).resolve().relative_to(root).as_posix()
        except ValueError:
            pass
    return Path(path).as_posix()


# -- prolog scan -----------------------------------------------------------------------------


class _Prolog:
    __slots__ = ("root_tag", "encoding", "filter_bytes")

    def __init__(self, root_tag: str, encoding: str, filter_bytes: bool) -> None:
        self.root_tag = root_tag
        self.encoding = encoding
        self.filter_bytes = filter_bytes


_ENCODING_RE = re.compile(r"""encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
_NAME_END = re.compile(r"[\s/>]")


def _sniff_encoding(head: bytes) -> tuple[str, int]:
    """The byte encoding from a BOM or the NUL pattern of `<?`, and the BOM length."""
    for bom, enc in (
        (codecs.BOM_UTF32_LE, "utf-32-le"),
        (codecs.BOM_UTF32_BE, "utf-32-be"),
        (codecs.BOM_UTF8, "utf-8"),
        (codecs.BOM_UTF16_LE, "utf-16-le"),
        (codecs.BOM_UTF16_BE, "utf-16-be"),
    ):
        if head.startswith(bom):
            return enc, len(bom)
    if head[:4] == b"<\x00\x00\x00":
        return "utf-32-le", 0
    if head[:4] == b"\x00\x00\x00<":
        return "utf-32-be", 0
    if head[:2] == b"<\x00":
        return "utf-16-le", 0
    if head[:2] == b"\x00<":
        return "utf-16-be", 0
    return "utf-8", 0


def _scan_prolog(raw: IO[bytes], name: str) -> _Prolog:
    """Check everything before the root element; refuse entity declarations and non-JUnit roots."""
    head = raw.read(PROLOG_LIMIT)
    if not head.strip():
        what = "empty (0 bytes)" if not head else "blank (whitespace only)"
        raise JUnitError(f"{name}: the file is {what}; the test run probably died before writing its report")
    enc, bom = _sniff_encoding(head)
    text = head[bom:].decode(enc, errors="replace")
    i, n = 0, len(text)
    declared = "utf-8"
    while True:
        while i < n and text[i] in " \t\r\n":
            i += 1
        if i >= n:
            raise JUnitError(
                f"{name}: no root element within the first {PROLOG_LIMIT // 1024} KB; "
                f"a JUnit file starts with <testsuites> or <testsuite> right after the XML declaration"
            )
        if text.startswith("<?", i):
            end = text.find("?>", i)
            if end < 0:
                i = n
                continue
            if text.startswith("<?xml", i):
                m = _ENCODING_RE.search(text, i, end)
                if m:
                    declared = m.group(1).lower()
            i = end + 2
        elif text.startswith("<!--", i):
            end = text.find("-->", i + 4)
            i = n if end < 0 else end + 3
        elif text.startswith("<!DOCTYPE", i):
            i = _check_doctype(text, i, name)
        elif text.startswith("<", i) and i + 1 < n and (text[i + 1].isalpha() or text[i + 1] in "_:"):
            m = _NAME_END.search(text, i + 1)
            tag = text[i + 1 : m.start() if m else n]
            local = tag.rsplit(":", 1)[-1]
            if local not in JUNIT_ROOTS:
                raise JUnitError(
                    f"{name}: not a JUnit report: the root element is <{tag}>, expected <testsuites> or "
                    f"<testsuite>; pass only the JUnit XML files a test runner wrote"
                )
            # The byte filter assumes an ASCII-compatible encoding; UTF-16/32 files are passed through as they are.
            ascii_compatible = enc == "utf-8" and not declared.startswith(("utf-16", "utf16", "utf-32", "ucs"))
            return _Prolog(local, "utf-8" if declared in ("utf-8", "utf8") else declared, ascii_compatible)
        else:
            snippet = text[i : i + 40].splitlines()[0] if text[i : i + 40].strip() else ""
            raise JUnitError(
                f"{name}: not XML: expected '<' at the start of the document, found {snippet!r}; "
                f"pass the JUnit XML files a test runner wrote"
            )


def _check_doctype(text: str, i: int, name: str) -> int:
    """Skip a DOCTYPE without an internal subset of declarations that could expand; refuse the others."""
    n = len(text)
    j = i + len("<!DOCTYPE")
    quote = ""
    while j < n:
        c = text[j]
        if quote:
            if c == quote:
                quote = ""
        elif c in "\"'":
            quote = c
        elif c == ">":
            return j + 1
        elif c == "[":
            break
        j += 1
    else:
        raise JUnitError(f"{name}: the DOCTYPE declaration does not end within the first {PROLOG_LIMIT // 1024} KB")
    close = text.find("]", j)
    subset = text[j : close if close >= 0 else n]
    if "<!ENTITY" in subset:
        kind = "external entities (XXE)" if re.search(r"\b(SYSTEM|PUBLIC)\b", subset) else "entity expansion"
        raise JUnitError(
            f"{name}: refused: the DOCTYPE declares entities, which JUnit files never need and which can be used "
            f"for {kind} attacks (billion laughs, reading local files); regenerate the report with the test runner"
        )
    if close < 0:
        raise JUnitError(f"{name}: the DOCTYPE's internal subset does not end in the first {PROLOG_LIMIT >> 10} KB")
    end = text.find(">", close)
    if end < 0:
        raise JUnitError(f"{name}: the DOCTYPE declaration is not closed")
    return end + 1


# -- byte filter for XML 1.0-forbidden characters -----------------------------------------------

_CTRL_BYTES = bytes(range(0x00, 0x09)) + b"\x0b\x0c" + bytes(range(0x0E, 0x20))
_CTRL_RE = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_CHARREF_RE = re.compile(
    rb"&#(?:[xX]0*(?:[0-8bBcCeEfF]|1[0-9a-fA-F]|[fF]{3}[eEfF]|[dD][89a-fA-F][0-9a-fA-F]{2})|0*(?:[0-8]|1[124-9]|2[0-9]|3[01]|6553[45]));"
)
_NONCHAR_RE = re.compile(rb"\xef\xbf[\xbe\xbf]|\xed[\xa0-\xbf][\x80-\xbf]")
_REPLACEMENT = "\ufffd".encode()
_HOLD = 24


class _Sanitizer:
    """A read-only byte stream that replaces characters XML 1.0 forbids with U+FFFD, chunk by chunk."""

    def __init__(self, raw: IO[bytes], utf8: bool) -> None:
        self._raw = raw
        self._utf8 = utf8
        self._pending = b""
        self._out = b""
        self._eof = False
        self.replaced = 0

    def read(self, size: int = -1) -> bytes:
        while not self._out and not self._eof:
            self._fill(max(size, 1 << 16))
        if size < 0 or size >= len(self._out):
            out, self._out = self._out, b""
            return out
        out, self._out = self._out[:size], self._out[size:]
        return out

    def _fill(self, size: int) -> None:
        data = self._raw.read(size)
        buf = self._pending + data if self._pending else data
        if not data:
            self._eof = True
            self._pending = b""
            self._out = self._clean(buf)
            return
        # Hold back a tail so that a character reference or a multi-byte sequence is never cut in two
        # (only when the tail could hold one: otherwise no copies are made).
        if b"&" not in buf[-_HOLD:] and buf[-_HOLD:].isascii():
            self._pending = b""
            self._out = self._clean(buf)
            return
        cut = max(0, len(buf) - _HOLD)
        amp = buf.rfind(b"&", max(0, cut - _HOLD), cut)
        if amp >= 0 and b";" not in buf[amp:cut]:
            cut = amp
        while cut > 0 and 0x80 <= buf[cut] < 0xC0:
            cut -= 1
        self._pending = buf[cut:]
        self._out = self._clean(buf[:cut])

    def _clean(self, chunk: bytes) -> bytes:
        # bytes.translate and single-byte `in` run at memory speed; the regexes only run when something is there.
        if len(chunk.translate(None, _CTRL_BYTES)) != len(chunk):
            chunk, count = _CTRL_RE.subn(_REPLACEMENT, chunk)
            self.replaced += count
        if b"#" in chunk and b"&#" in chunk:  # memchr for one byte first: a two-byte search is several times slower
            chunk, count = _CHARREF_RE.subn(_REPLACEMENT if self._utf8 else b"?", chunk)
            self.replaced += count
        if self._utf8 and (b"\xef" in chunk or b"\xed" in chunk) and _NONCHAR_RE.search(chunk):
            chunk, count = _NONCHAR_RE.subn(_REPLACEMENT, chunk)
            self.replaced += count
        return chunk


# -- reading one file ------------------------------------------------------------------------

_FAILURE_TAGS = {"failure": _FAILED, "error": _ERROR}
_FLAKY_TAGS = {"flakyFailure": _FAILED, "flakyError": _ERROR}
_RERUN_TAGS = {"rerunFailure": _FAILED, "rerunError": _ERROR}


class _Detail:
    """What a failing attempt said; turned into a `Failure` only for tests that end failed or flaky."""

    __slots__ = ("outcome", "message", "type", "text", "out", "err", "file", "line", "duration")

    def __init__(self, outcome: Outcome, message: str | None, type_: str | None, text: str) -> None:
        self.outcome = outcome
        self.message = message
        self.type = type_
        self.text = text
        self.out = ""
        self.err = ""
        self.file: str | None = None
        self.line: int | None = None
        self.duration = 0.0


# Attempts are (outcome, duration, message) tuples, kept only when there is more than one.
_Attempts = list[tuple[Outcome, float, str | None]]


def _read_file(path: Path, entry: JUnitFile, acc: _Accumulator) -> None:
    from lxml import etree

    name = entry.path
    try:
        raw = open(path, "rb")  # noqa: SIM115 - closed in finally; the parser reads it incrementally
    except FileNotFoundError:
        raise JUnitError(f"{name}: file not found; check the path (the run may not have written it)") from None
    except IsADirectoryError:
        raise JUnitError(f"{name}: is a folder, not a file; pass a glob like '{name}/*.xml'") from None
    except OSError as exc:
        raise JUnitError(f"{name}: cannot be opened: {exc.strerror}") from None
    target = _Target(acc, entry, Path(path).name)
    try:
        prolog = _scan_prolog(raw, name)
        raw.seek(0)
        source: _Sanitizer | IO[bytes] = _Sanitizer(raw, prolog.encoding == "utf-8") if prolog.filter_bytes else raw
        parser = etree.XMLParser(
            # lxml hands a target decoded `str`; lxml-stubs types the protocol as `str | bytes`.
            target=cast(Any, target),
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            huge_tree=True,
        )
        try:
            while chunk := source.read(_CHUNK):
                parser.feed(chunk)
            parser.close()
        except etree.XMLSyntaxError as exc:
            target.flush()  # the testcases read before the fault count
            line, column = exc.position if exc.position else (exc.lineno, 0)
            read = f"; the {target.n_cases} testcases before it are included" if target.n_cases else ""
            reason = re.sub(r",? line \d+, column \d+.*$", "", exc.msg or "").strip() or "syntax error"
            raise JUnitError(
                f"{name}: not well-formed XML at line {line}, column {column}: {reason}{read}; "
                f"the file is corrupt or was cut off, regenerate it"
            ) from None
        target.finish_file()
        if isinstance(source, _Sanitizer) and source.replaced:
            entry.notes.append(
                f"{source.replaced} characters that XML 1.0 forbids (control characters such as terminal "
                f"colour codes) were replaced with U+FFFD"
            )
        if not entry.tests and not entry.suites:
            entry.notes.append("no test cases and no suite counts in this file")
    except OSError as exc:
        raise JUnitError(f"{name}: read failed: {exc.strerror or exc}") from None
    finally:
        entry.tests = target.n_cases
        entry.dialect = target.dialect
        raw.close()


_CHUNK = 1 << 16
_TEXT_HEAD = 16 * 1024
_TEXT_TAIL = 16 * 1024
_OUTCOME_KIDS = frozenset({"failure", "error", "skipped", "flakyFailure", "flakyError", "rerunFailure", "rerunError"})
_SUITE_TAGS = frozenset({"testsuite", "testsuites"})
# (outcome, attempts, detail) of a testcase with children, kept in its batch until the batch is added.
_Record = tuple[Outcome, "_Attempts | None", "_Detail | None"]


class _Text:
    """Text of one element, kept bounded: its head and a rolling tail (a 1 GB `<system-out>` costs 32 KB)."""

    __slots__ = ("head", "tail", "tail_len", "dropped")

    def __init__(self) -> None:
        self.head: list[str] = []
        self.tail: list[str] = []
        self.tail_len = 0
        self.dropped = 0

    def add(self, text: str) -> None:
        if not self.tail and sum(map(len, self.head)) + len(text) <= _TEXT_HEAD:
            self.head.append(text)
            return
        self.tail.append(text)
        self.tail_len += len(text)
        if self.tail_len > 4 * _TEXT_TAIL:
            joined = "".join(self.tail)
            self.dropped += len(joined) - _TEXT_TAIL
            self.tail = [joined[-_TEXT_TAIL:]]
            self.tail_len = _TEXT_TAIL

    def value(self) -> str:
        head = "".join(self.head)
        if not self.tail:
            return head
        tail = "".join(self.tail)
        if not self.dropped:
            return head + tail
        return f"{head}\n… [{self.dropped} characters left out] …\n{tail}"


class _Kid:
    """A child of a testcase that says something about its outcome (failure, skipped, flakyFailure, ...)."""

    __slots__ = ("tag", "attrib", "text", "out", "err")

    def __init__(self, tag: str, attrib: dict[str, str]) -> None:
        self.tag = tag
        self.attrib = attrib
        self.text = _Text()
        self.out: _Text | None = None
        self.err: _Text | None = None


class _Suite:
    __slots__ = ("tag", "attrib", "idx", "nested", "props", "out", "err")

    def __init__(self, tag: str, attrib: dict[str, str]) -> None:
        self.tag = tag
        self.attrib = attrib
        self.idx: int | None = None
        self.nested = False
        self.props: set[str] = set()
        self.out: _Text | None = None
        self.err: _Text | None = None


_BATCH = 1024


class _Target:
    """lxml parser target: builds no tree; testcases become records as their end tags are read."""

    __slots__ = (
        "acc",
        "entry",
        "file_name",
        "dialect",
        "fast",
        "line_offset",
        "root_tag",
        "root_attrib",
        "stack",
        "cur_idx",
        "cur_name",
        "case",
        "plain",
        "records",
        "kids",
        "kid",
        "case_out",
        "case_err",
        "buf",
        "n_cases",
        "unnamed",
    )

    def __init__(self, acc: _Accumulator, entry: JUnitFile, file_name: str) -> None:
        self.acc = acc
        self.entry = entry
        self.file_name = file_name
        self.dialect: str | None = None
        self.fast = False  # a testcase without children may take the plain-pass path
        self.line_offset = 0
        self.root_tag = ""
        self.root_attrib: dict[str, str] = {}
        self.stack: list[_Suite] = []
        self.cur_idx: int | None = None
        self.cur_name = ""
        self.case: dict[str, str] | None = None
        self.plain: list[dict[str, str]] = []
        """Attributes of the current suite's testcases not yet handed to the accumulator, in document order."""
        self.records: dict[int, _Record] = {}
        """Outcomes of the testcases in `plain` that had children (failures, skips, output), by batch index."""
        self.kids: list[_Kid] | None = None
        self.kid: _Kid | None = None
        self.case_out: _Text | None = None
        self.case_err: _Text | None = None
        self.buf: _Text | None = None
        self.n_cases = 0
        self.unnamed = 0

    # -- the parser-target protocol. start/end/data run for every element, so the common case (a testcase
    # without children) only parks its attribute dict; `flush` turns a batch of them into columns with
    # C-speed comprehensions and dict operations.

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        if tag == "testcase":
            self.case = attrib
            return
        if self.case is not None:
            self._case_child_start(tag, attrib)
        elif tag in _SUITE_TAGS:
            self.flush()
            if self.stack:
                self.stack[-1].nested = True
            else:
                self.root_tag, self.root_attrib = tag, _unescape(attrib)
            self.stack.append(_Suite(tag, _unescape(attrib)))
            self.cur_idx = None
            self.cur_name = ""
        elif tag == "property":
            if self.dialect is None and self.stack:
                self.stack[-1].props.add(attrib.get("name", ""))
        elif tag == "system-out" and self.stack:
            self.buf = self.stack[-1].out = _Text()
        elif tag == "system-err" and self.stack:
            self.buf = self.stack[-1].err = _Text()

    def end(self, tag: str) -> None:
        if tag == "testcase":
            plain = self.plain
            if self.kids is None and self.fast:
                plain.append(self.case)  # type: ignore[arg-type]
            else:
                self._case_end(self.case)  # type: ignore[arg-type]
            self.case = None
            if len(plain) >= _BATCH:
                self.flush()
        elif self.case is not None:
            if tag in _OUTCOME_KIDS:
                self.kid = None
                self.buf = None
            elif tag in ("system-out", "system-err", "stackTrace"):
                self.buf = self.kid.text if self.kid is not None else None
        elif tag in _SUITE_TAGS:
            self.flush()
            if self.stack:
                self._suite_end(self.stack.pop())
            if self.stack:
                frame = self.stack[-1]
                self.cur_idx = frame.idx
                self.cur_name = self.acc.suites[frame.idx][0] if frame.idx is not None else ""
        else:
            self.buf = None

    def data(self, text: str) -> None:
        buf = self.buf
        if buf is not None:
            buf.add(text)

    def close(self) -> None:
        return None

    # -- testcases

    def flush(self) -> None:
        """Hand the batch (testcases of the current suite, in document order) to the accumulator."""
        batch = self.plain
        if not batch:
            return
        records = self.records
        self.plain = []
        self.records = {}
        idx = self.cur_idx if self.cur_idx is not None else self._register(self.stack[-1])
        self.n_cases += len(batch)
        names = [a.get("name") for a in batch]
        classes = [a.get("classname") for a in batch]
        times = [a.get("time") for a in batch]
        if "&" in "".join(filter(None, names)) or "&" in "".join(filter(None, classes)):
            names = [_AMP_FIX(n) if n else n for n in names]
            classes = [_AMP_FIX(n) if n else n for n in classes]
        self.acc.add_batch(names, classes, times, batch, records, idx, self.cur_name, self._unnamed)

    def _case_child_start(self, tag: str, attrib: dict[str, str]) -> None:
        if tag in _OUTCOME_KIDS:
            kid = _Kid(tag, _unescape(attrib))
            if self.kids is None:
                self.kids = []
            self.kids.append(kid)
            self.kid = kid
            self.buf = kid.text
        elif tag == "system-out" or tag == "system-err":
            text = _Text()
            if self.kid is not None:
                setattr(self.kid, "out" if tag == "system-out" else "err", text)
            else:
                if self.kids is None:
                    self.kids = []  # takes the testcase off the plain-pass path, which would not reset the output
                setattr(self, "case_out" if tag == "system-out" else "case_err", text)
            self.buf = text
        elif tag == "stackTrace" and self.kid is not None:
            self.buf = self.kid.text

    def _unnamed(self) -> str:
        self.unnamed += 1
        return f"(unnamed testcase {self.unnamed})"

    def _case_end(self, attrib: dict[str, str]) -> None:
        """A testcase with children (or read before the dialect is known): work out outcome and attempts."""
        fixed = _unescape(attrib)
        if self.dialect is None:
            self._detect(fixed)
        idx = self.cur_idx if self.cur_idx is not None else self._register(self.stack[-1])
        dur = _seconds(fixed.get("time") or "0")
        outcome, attempts, detail = self._case_outcome(fixed, dur, idx)
        self.buf = self.kid = None
        self.kids = None
        self.case_out = self.case_err = None
        # It keeps its place in the batch (document order); `flush` reads its name and class like the others'.
        self.records[len(self.plain)] = (outcome, attempts, detail)
        self.plain.append(attrib)

    def _case_outcome(
        self, attrib: dict[str, str], dur: float, idx: int
    ) -> tuple[Outcome, _Attempts | None, _Detail | None]:
        outcome = _PASSED
        detail: _Detail | None = None
        skip_msg: str | None = None
        extra: list[_Kid] = []
        for kid in self.kids or ():
            tag = kid.tag
            if tag in _FAILURE_TAGS:
                outcome = _ERROR if outcome is _ERROR else _FAILURE_TAGS[tag]
                detail = _Detail(outcome, kid.attrib.get("message"), kid.attrib.get("type"), kid.text.value())
            elif tag == "skipped":
                if outcome is _PASSED:
                    outcome = _SKIPPED
                skip_msg = kid.attrib.get("message") or kid.text.value().strip() or None
            else:
                extra.append(kid)
        if outcome is _PASSED and self.dialect == dialects.BAZEL and attrib.get("status") == "notrun":
            outcome = _SKIPPED
        attempts: _Attempts | None = None
        if extra:
            attempts = []
            if outcome in (_FAILED, _ERROR) and detail is not None:
                attempts.append((outcome, dur, dialects.best_message(detail.message, detail.text)))
            # Surefire lists flaky runs, then reruns; both precede the recorded run's verdict in time.
            extra.sort(key=lambda k: k.tag in _RERUN_TAGS)
            for kid in extra:
                kind = _FLAKY_TAGS.get(kid.tag) or _RERUN_TAGS[kid.tag]
                # the element's own whitespace runs into its <stackTrace> text: trim it
                d = _Detail(kind, kid.attrib.get("message"), kid.attrib.get("type"), kid.text.value().strip())
                d.out = kid.out.value() if kid.out is not None else ""
                d.err = kid.err.value() if kid.err is not None else ""
                took = _seconds(kid.attrib.get("time") or "0")
                attempts.append((kind, took, dialects.best_message(d.message, d.text)))
                if detail is None or outcome is _PASSED:
                    detail = d
            if outcome is _PASSED:
                # flakyFailure: earlier runs failed, the recorded (last) run passed.
                attempts.append((_PASSED, dur, None))
                outcome = _FLAKY
        if detail is None:
            if outcome is _SKIPPED and skip_msg:
                return outcome, [(outcome, dur, skip_msg)], None
            return outcome, attempts, None
        if not detail.out and not detail.err:
            detail.out = self.case_out.value() if self.case_out is not None else ""
            detail.err = self.case_err.value() if self.case_err is not None else ""
        detail.file = attrib.get("file")
        line = attrib.get("line", "").strip()
        detail.line = int(line) + self.line_offset if line.isdigit() else None
        if not detail.out and not detail.err:
            self.acc.waiting_output.setdefault(idx, []).append(detail)
        return outcome, attempts, detail

    # -- suites and dialects

    def _register(self, frame: _Suite) -> int:
        idx = self.acc.suite(frame.attrib.get("name") or self.file_name, self.entry.path)
        frame.idx = idx
        if frame is self.stack[-1]:
            self.cur_idx = idx
            self.cur_name = self.acc.suites[idx][0]
        self.entry.suites += 1
        return idx

    def _suite_end(self, frame: _Suite) -> None:
        acc = self.acc
        idx = frame.idx
        if idx is None and not frame.nested:
            declared = _int(frame.attrib.get("tests"))
            if declared:
                idx = self._register(frame)
                get = frame.attrib.get
                acc.declared[idx] = (declared, _int(get("failures")), _int(get("errors")), _int(get("skipped")))
                self.entry.notes.append(
                    f"suite {acc.suites[idx][0]!r} declares {declared} tests but lists no testcases; "
                    f"its counts come from the attributes"
                )
        if idx is None:
            return
        time_attr = frame.attrib.get("time")
        if time_attr:
            acc.suites[idx][2] += _seconds(time_attr)
        # Bazel (and Gradle) put the output at suite level: give it to the suite's failures that have none.
        waiting = acc.waiting_output.pop(idx, None)
        if waiting and (frame.out is not None or frame.err is not None):
            out = frame.out.value() if frame.out is not None else ""
            err = frame.err.value() if frame.err is not None else ""
            for detail in waiting:
                if not detail.out and not detail.err:
                    detail.out, detail.err = out, err

    def _detect(self, case: dict[str, str] | None) -> None:
        suite = self.stack[-1] if self.stack else _Suite(self.root_tag, self.root_attrib)
        self.dialect = dialects.detect_dialect(
            root_tag=self.root_tag,
            root=self.root_attrib,
            suite=suite.attrib,
            case=case,
            properties=frozenset(suite.props),
            file_name=self.file_name,
            surefire_elements=any(k.tag in _FLAKY_TAGS or k.tag in _RERUN_TAGS for k in self.kids or ()),
        )
        # pytest's xunit1 `line` attribute counts from 0 (it is the def line's index).
        self.line_offset = 1 if self.dialect == dialects.PYTEST_XUNIT1 else 0
        self.fast = self.dialect != dialects.BAZEL

    def finish_file(self) -> None:
        self.flush()
        if self.dialect is None:
            self._detect(None)


def _unescape(attrib: dict[str, str]) -> dict[str, str]:
    """Undo libxml2's escaping of '&' as '&#38;' in attribute values handed to a parser target.

    Without entity substitution libxml2 writes every '&' of an attribute value as "&#38;" (and only
    those), so replacing "&#38;" back is exact.
    """
    if any("&" in v for v in attrib.values()):
        return {k: _AMP_FIX(v) for k, v in attrib.items()}
    return attrib


def _AMP_FIX(value: str) -> str:  # noqa: N802 - used like a constant function in comprehensions
    return value.replace("&#38;", "&")


def _detail_message(detail: _Detail | None) -> str | None:
    return dialects.best_message(detail.message, detail.text) if detail is not None else None


def _verdict(attempts: _Attempts) -> Outcome:
    outcomes = [a[0] for a in attempts if a[0] is not _SKIPPED]
    if not outcomes:
        return _SKIPPED
    passed = any(o is _PASSED or o is _FLAKY for o in outcomes)
    failed = any(o is not _PASSED for o in outcomes)
    if passed:
        return _FLAKY if failed else _PASSED
    return outcomes[-1]


def _seconds(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        try:
            return float(value.replace(",", "").rstrip("s"))
        except ValueError:
            return 0.0


def _int(value: str | None) -> int:
    try:
        return int(value) if value else 0
    except ValueError:
        return 0


# -- merging across files --------------------------------------------------------------------


_PLAIN_PASS: _Record = (_PASSED, None, None)


class _SecondsCache(dict[str, float]):
    """`time` attribute → seconds. Test times repeat ("0.236" has a thousand values), and float() of a
    decimal that binary cannot hold exactly takes ~0.4 µs, four times a dict lookup; same values either way."""

    def __missing__(self, key: str) -> float:
        value = float(key)
        if len(self) < 65536:
            self[key] = value
        return value


class _Accumulator:
    """Every test seen so far, in columns (a test is a position), keyed by (class or suite, name).

    Columns instead of one object per test keep memory at roughly 200 bytes per test and let a batch
    of plain passing testcases be added with list/dict operations that run in C.
    """

    def __init__(self, root: Path | None) -> None:
        self.root = root
        self.index: dict[str, dict[str, int]] = {}
        """Class (or suite, when the class is empty) → test name → position."""
        self.names: list[str] = []
        self.classes: list[str] = []
        # Lists, not arrays: list.extend copies pointers, array.extend converts element by element (3x slower).
        self.suite_of: list[int] = []
        self.outcome: list[Outcome] = []
        self.dur: list[float] = []
        self.attempts: dict[int, _Attempts] = {}
        """Positions with more than one attempt (or a skip message); the others ran once."""
        self.detail: dict[int, _Detail] = {}
        """Positions whose last failing attempt said something."""
        self.runs: list[list[int]] = []  # [suite index, first position, end position]
        self.suites: list[list[Any]] = []  # [name, first file, time attribute sum]
        self._suite_by_name: dict[str, int] = {}
        self.declared: dict[int, tuple[int, int, int, int]] = {}
        self.waiting_output: dict[int, list[_Detail]] = {}
        # Candidates for the slowest tests: every test whose duration reached the running floor when added.
        self._slow: set[int] = set()
        self._slow_floor = float("-inf")
        self._slow_exact = True
        self._seconds: _SecondsCache | None = _SecondsCache()

    def suite(self, name: str, file: str) -> int:
        idx = self._suite_by_name.get(name)
        if idx is None:
            idx = len(self.suites)
            self.suites.append([name, file, 0.0])
            self._suite_by_name[name] = idx
        return idx

    def _run(self, idx: int, start: int, end: int) -> None:
        runs = self.runs
        if runs and runs[-1][0] == idx and runs[-1][2] == start:
            runs[-1][2] = end
        else:
            runs.append([idx, start, end])

    def add_batch(
        self,
        names: list[str | None],
        classes: list[str | None],
        times: list[str | None],
        cases: list[dict[str, str]],
        records: dict[int, _Record],
        idx: int,
        suite_name: str,
        unnamed: Callable[[], str],
    ) -> None:
        """Add a suite's testcases in document order: plain passes, and at `records` the ones with children."""
        if not all(names):
            names = [name or unnamed() for name in names]
        durations = self._durations(times)
        first = classes[0]
        n = len(names)
        if first is not None and classes.count(first) == n:
            # One class for the whole batch (Go, Surefire, most writers): one lookup, one intern.
            cls = sys.intern(first)
            self._add_run(cls or suite_name, [cls] * n, cast(list[str], names), durations, idx, records, 0)
            return
        if None in classes:
            classes = [c if c is not None else a.get("class") or "" for c, a in zip(classes, cases, strict=True)]
        interned = list(map(sys.intern, cast(list[str], classes)))
        start = 0
        for cls, group in groupby(interned):
            end = start + sum(1 for _ in group)
            key_cls = cls or suite_name
            run_names = cast(list[str], names[start:end])
            self._add_run(key_cls, interned[start:end], run_names, durations[start:end], idx, records, start)
            start = end

    def _durations(self, times: list[str | None]) -> list[float]:
        cache = self._seconds
        try:
            if cache is None:
                return list(map(float, times))  # type: ignore[arg-type]
            before = len(cache)
            durations = list(map(cache.__getitem__, times))  # type: ignore[arg-type]  # None: TypeError below
            if len(cache) - before > len(times) // 2 and len(cache) > 4096:
                self._seconds = None  # times too precise to repeat: the cache would only cost
            return durations
        except (TypeError, ValueError):
            return [_seconds(t) if t else 0.0 for t in times]

    def _add_run(
        self,
        key_cls: str,
        classes: list[str],
        names: list[str],
        durations: list[float],
        idx: int,
        records: dict[int, _Record],
        offset: int,
    ) -> None:
        """Add consecutive testcases of one class; if one was seen before (a rerun), each goes through `add`."""
        sub = self.index.get(key_cls)
        if sub is None:
            sub = self.index[key_cls] = {}
        n = len(names)
        base = len(self.names)
        if sub.keys().isdisjoint(names):
            before = len(sub)
            sub.update(zip(names, range(base, base + n), strict=True))
            if len(sub) == before + n:
                self.names.extend(names)
                self.classes.extend(classes)
                self.suite_of.extend([idx] * n)
                self.outcome.extend([_PASSED] * n)
                self.dur.extend(durations)
                self._run(idx, base, base + n)
                for i, (outcome, attempts, detail) in records.items():
                    if offset <= i < offset + n:
                        pos = base + i - offset
                        self.outcome[pos] = outcome
                        if attempts is not None:
                            self.attempts[pos] = attempts
                        if detail is not None:
                            self.detail[pos] = detail
                if durations and max(durations) > self._slow_floor:
                    self._offer_slow(base, durations)  # rarely, once the floor has risen
                return
            for name in names:  # the same name twice in this run: undo, then one by one
                sub.pop(name, None)
        for i, (name, cls, took) in enumerate(zip(names, classes, durations, strict=True)):
            outcome, attempts, detail = records.get(offset + i) or _PLAIN_PASS
            self.add((key_cls, name), name, cls, idx, outcome, took, attempts, detail)

    def _offer_slow(self, base: int, durations: list[float]) -> None:
        """Make candidates of the batch's durations that could rank among the slowest (ties included)."""
        ranked = sorted(durations)  # C; only the batch's own top values can make the list
        # Later positions lose ties, so a value must beat the floor, and reach the batch's own 10th value.
        start = max(bisect_right(ranked, self._slow_floor), len(ranked) - SLOWEST_LIMIT)
        while 0 < start < len(ranked) and ranked[start - 1] == ranked[start]:
            start -= 1  # ties with the batch's 10th value: keep them all, the earliest wins later
        slow = self._slow
        for value in set(ranked[start:]):
            if value <= 0 or value <= self._slow_floor:
                continue
            i = -1
            while True:
                try:
                    i = durations.index(value, i + 1)
                except ValueError:
                    break
                slow.add(base + i)
        if len(slow) > 8 * SLOWEST_LIMIT:
            dur = self.dur
            keep = heapq.nsmallest(SLOWEST_LIMIT, slow, key=lambda pos: (-dur[pos], pos))
            self._slow = set(keep)
            self._slow_floor = min(dur[pos] for pos in keep)

    def add(
        self,
        key: tuple[str, str],
        name: str,
        cls: str,
        idx: int,
        outcome: Outcome,
        dur: float,
        attempts: _Attempts | None,
        detail: _Detail | None,
    ) -> None:
        """Add one attempt of one test; a test already seen gets it as another attempt."""
        sub = self.index.get(key[0])
        if sub is None:
            sub = self.index[key[0]] = {}
        pos = sub.get(key[1])
        if pos is None:
            pos = len(self.names)
            sub[key[1]] = pos
            self.names.append(name)
            self.classes.append(sys.intern(cls))
            self.suite_of.append(idx)
            self.outcome.append(outcome)
            self.dur.append(dur)
            if attempts is not None:
                self.attempts[pos] = attempts
            if detail is not None:
                self.detail[pos] = detail
            self._run(idx, pos, pos + 1)
            self._slow.add(pos)
            return
        previous = self.attempts.get(pos) or [(self.outcome[pos], self.dur[pos], _detail_message(self.detail.get(pos)))]
        merged = previous + (attempts or [(outcome, dur, _detail_message(detail))])
        self.attempts[pos] = merged
        self.outcome[pos] = _verdict(merged)
        self.dur[pos] += dur
        if dur < 0:
            self._slow_exact = False  # the candidate set assumes durations only grow
        self._slow.add(pos)
        if detail is not None:
            self.detail[pos] = detail

    def finish(self, *, keep_tests: bool, max_failures: int | None) -> tuple[TestReport, list[Failure], int]:
        column = {_PASSED: 1, _FAILED: 2, _ERROR: 3, _SKIPPED: 4, _FLAKY: 5}
        rows = [[0, 0, 0, 0, 0, 0] for _ in self.suites]  # tests passed failed errors skipped flaky
        durations = [0.0] * len(self.suites)
        for idx, start, end in self.runs:
            # A run is a range of positions of one suite; list.count compares by identity first, in C.
            row = rows[idx]
            part = self.outcome[start:end]
            row[0] += end - start
            for outcome, col in column.items():
                row[col] += part.count(outcome)
            durations[idx] += sum(self.dur[start:end])
        attempts_total = len(self.names) + sum(len(a) - 1 for a in self.attempts.values())
        for idx, (tests, failed, errors, skipped) in self.declared.items():
            if rows[idx][0] == 0:
                rows[idx] = [tests, max(0, tests - failed - errors - skipped), failed, errors, skipped, 0]
                attempts_total += tests
        sums = [sum(col) for col in zip(*rows, strict=True)] if rows else [0] * 6
        totals = Totals(
            tests=sums[0],
            passed=sums[1],
            failed=sums[2],
            errors=sums[3],
            skipped=sums[4],
            flaky=sums[5],
            attempts=attempts_total,
        )
        suites = [
            SuiteSummary(
                name=name,
                file=file,
                tests=row[0],
                passed=row[1],
                failed=row[2],
                errors=row[3],
                skipped=row[4],
                flaky=row[5],
                duration_s=round(time_sum or durations[idx], 6),
            )
            for idx, ((name, file, time_sum), row) in enumerate(zip(self.suites, rows, strict=True))
            if row[0]
        ]
        failing: list[int] = []
        flaky: list[Failure] = []
        for pos in sorted(self.detail):
            outcome = self.outcome[pos]
            if outcome is _FAILED or outcome is _ERROR:
                failing.append(pos)
            elif outcome is _FLAKY:
                flaky.append(self._failure(pos))
        # Messages, locations and excerpts are worked out only for the failures that are returned.
        omitted = 0
        if max_failures is not None and len(failing) > max_failures:
            omitted = len(failing) - max_failures
            failing = failing[:max_failures]
        failures = [self._failure(pos) for pos in failing]
        dur = self.dur
        candidates = sorted(self._slow) if self._slow_exact else range(len(dur))
        slowest = [
            TestTiming(name=self.names[pos], classname=self.classes[pos], duration_s=dur[pos])
            for pos in heapq.nlargest(SLOWEST_LIMIT, candidates, key=dur.__getitem__)
            if dur[pos] > 0
        ]
        report = TestReport(
            source=CountsSource.JUNIT,
            totals=totals,
            suites=suites,
            failures=failures,
            slowest=slowest,
            tests=self._tests() if keep_tests else [],
        )
        return report, flaky, omitted

    def _failure(self, pos: int) -> Failure:
        detail = self.detail[pos]
        message = dialects.best_message(detail.message, detail.text)
        return Failure(
            test=self.names[pos],
            classname=self.classes[pos],
            outcome=self.outcome[pos],
            message=message,
            location=self._location(pos, detail),
            excerpt=_excerpt(detail.text, detail.out, detail.err),
            attempts=len(self.attempts[pos]) if pos in self.attempts else 1,
            kind=dialects.failure_kind(detail.type, message, detail.text),
        )

    def _location(self, pos: int, detail: _Detail) -> Location | None:
        return dialects.find_location(
            detail.text or detail.out,
            classname=self.classes[pos],
            file_attr=detail.file,
            line_attr=detail.line,
            root=self.root,
        )

    def _tests(self) -> list[TestResult]:
        tests = []
        suite_names = [s[0] for s in self.suites]
        for pos, name in enumerate(self.names):
            outcome = self.outcome[pos]
            detail = self.detail.get(pos)
            attempts = self.attempts.get(pos) or [(outcome, self.dur[pos], _detail_message(detail))]
            failing = detail is not None and outcome is not _PASSED and outcome is not _SKIPPED
            tests.append(
                TestResult(
                    name=name,
                    classname=self.classes[pos],
                    suite=suite_names[self.suite_of[pos]],
                    outcome=outcome,
                    duration_s=self.dur[pos],
                    attempts=[Attempt(outcome=o, duration_s=d, message=m) for o, d, m in attempts],
                    location=self._location(pos, detail) if failing and detail is not None else None,
                    message=_detail_message(detail) if failing else None,
                )
            )
        return tests


def _excerpt(text: str, out: str, err: str) -> str:
    """The failure text, then the test's own output, each cut to its share of the excerpt budget."""
    text = text.strip("\n")
    candidates = (("", text), ("--- system-out ---\n", out.strip("\n")), ("--- system-err ---\n", err.strip("\n")))
    parts = [p for p in candidates if p[1]]
    if not parts:
        return ""
    budget = EXCERPT_LIMIT // len(parts)
    return excerpt("\n".join(head + excerpt(body, max(1, budget - len(head) - 1)) for head, body in parts))
