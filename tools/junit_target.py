"""Read one JUnit file through lxml's parser target; its testcases go to the accumulator in batches.

Reading path. JUnit files are untrusted and can be huge (a 200 MB `<system-out>`, a 2 GB nightly
file). They are fed in 64 KB chunks to lxml's libxml2 parser with `resolve_entities=False,
no_network=True, load_dtd=False, huge_tree=True` and a *parser target* (`_Target`: start/end/data
callbacks). No tree is built, so there is nothing to clear, and an element's text is kept only as a
bounded head and tail (`_Text`): a 200 MB `<system-out>` adds 2 MB of peak memory. A testcase without
children (one that passed) only parks the attribute dict lxml hands over; a testcase with children
(failure, skip, output, Surefire reruns) is worked out at its end tag and keeps its place in the batch.
Every 1024 testcases, and at each suite boundary, the batch goes to `Accumulator.add_batch`
(`junit_merge`) in one call, in document order, which adds it with comprehensions and dict operations
that run in C. The parser never expands entities or loads anything; the prolog and the bytes are checked
first by `junit_prolog`.

Why not `iterparse` (which DESIGN.md names): measured side by side in `bench/bench_junit.py` on
100,000 testcases. The least an iterparse reader can do (tag filter in C so Python sees one event per
testcase and suite, attributes read in batches, earlier siblings deleted) costs 1.06-1.09x the bare
counting loop before any merging; the same through a parser target costs 0.90-0.92x, because lxml
builds the target's attribute dicts in C while each `el.get` is a Python call. A complete iterparse
reader with this accumulator measured 1.92x the floor against 1.67x for this one at the time. And
under iterparse libxml2 holds a single `<system-out>` whole until its element ends, so its size would
be the reader's peak memory. Memory here grows with the number of distinct tests (columns of names,
classes, outcomes and durations), not with the size of the file.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, cast

from . import junit_dialects as dialects
from .errors import JUnitError
from .junit_prolog import Sanitizer, scan_prolog
from .models import Outcome

if TYPE_CHECKING:
    from .junit import JUnitFile
    from .junit_merge import Accumulator

PASSED, FAILED, ERROR, SKIPPED, FLAKY = (
    Outcome.PASSED,
    Outcome.FAILED,
    Outcome.ERROR,
    Outcome.SKIPPED,
    Outcome.FLAKY,
)
"""The outcomes as module globals: in the per-testcase paths a global lookup is cheaper than `Outcome.X`."""

_FAILURE_TAGS = {"failure": FAILED, "error": ERROR}
_FLAKY_TAGS = {"flakyFailure": FAILED, "flakyError": ERROR}
_RERUN_TAGS = {"rerunFailure": FAILED, "rerunError": ERROR}


class Detail:
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


Attempts = list[tuple[Outcome, float, str | None]]
"""A test's attempts as (outcome, duration, message) tuples, kept only when there is more than one."""


def read_file(path: Path, entry: JUnitFile, acc: Accumulator) -> None:
    """Stream one file into `acc`, filling in `entry`; a file that cannot be read raises `JUnitError`
    (the testcases read before a syntax error are kept)."""
    from lxml import etree

    name = entry.path
    raw = _open_regular(path, name)
    target = _Target(acc, entry, Path(path).name)
    try:
        prolog = scan_prolog(raw, name)
        raw.seek(0)
        source: Sanitizer | IO[bytes] = Sanitizer(raw, prolog.encoding == "utf-8") if prolog.filter_bytes else raw
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
        if isinstance(source, Sanitizer) and source.replaced:
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


def _open_regular(path: Path, name: str) -> IO[bytes]:
    """`path` opened for reading if it is a regular file; anything else (a named pipe, a device) is refused.

    Opened non-blocking and checked with fstat on the open descriptor: opening a named pipe blocks until a
    writer comes, so a check before a plain open could still hang (and the file could be swapped in between).
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        raise JUnitError(f"{name}: file not found; check the path (the run may not have written it)") from None
    except IsADirectoryError:
        raise JUnitError(f"{name}: is a folder, not a file; pass a glob like '{name}/*.xml'") from None
    except OSError as exc:
        raise JUnitError(f"{name}: cannot be opened: {exc.strerror}") from None
    mode = os.fstat(fd).st_mode
    if stat.S_ISDIR(mode):
        os.close(fd)
        raise JUnitError(f"{name}: is a folder, not a file; pass a glob like '{name}/*.xml'")
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = "a named pipe (FIFO)" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a device"
        raise JUnitError(f"{name}: is {kind}, not a regular file; pass the JUnit XML file a test runner wrote")
    return os.fdopen(fd, "rb")


_CHUNK = 1 << 16
_TEXT_HEAD = 16 * 1024
_TEXT_TAIL = 16 * 1024
_OUTCOME_KIDS = frozenset({"failure", "error", "skipped", "flakyFailure", "flakyError", "rerunFailure", "rerunError"})
_SUITE_TAGS = frozenset({"testsuite", "testsuites"})
Record = tuple[Outcome, "Attempts | None", "Detail | None"]
"""(outcome, attempts, detail) of a testcase with children, kept in its batch until the batch is added."""


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

    def __init__(self, acc: Accumulator, entry: JUnitFile, file_name: str) -> None:
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
        self.records: dict[int, Record] = {}
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
        dur = parse_seconds(fixed.get("time") or "0")
        outcome, attempts, detail = self._case_outcome(fixed, dur, idx)
        self.buf = self.kid = None
        self.kids = None
        self.case_out = self.case_err = None
        # It keeps its place in the batch (document order); `flush` reads its name and class like the others'.
        self.records[len(self.plain)] = (outcome, attempts, detail)
        self.plain.append(attrib)

    def _case_outcome(
        self, attrib: dict[str, str], dur: float, idx: int
    ) -> tuple[Outcome, Attempts | None, Detail | None]:
        outcome = PASSED
        detail: Detail | None = None
        skip_msg: str | None = None
        extra: list[_Kid] = []
        for kid in self.kids or ():
            tag = kid.tag
            if tag in _FAILURE_TAGS:
                outcome = ERROR if outcome is ERROR else _FAILURE_TAGS[tag]
                detail = Detail(outcome, kid.attrib.get("message"), kid.attrib.get("type"), kid.text.value())
            elif tag == "skipped":
                if outcome is PASSED:
                    outcome = SKIPPED
                skip_msg = kid.attrib.get("message") or kid.text.value().strip() or None
            else:
                extra.append(kid)
        if outcome is PASSED and self.dialect == dialects.BAZEL and attrib.get("status") == "notrun":
            outcome = SKIPPED
        attempts: Attempts | None = None
        if extra:
            attempts = []
            if outcome in (FAILED, ERROR) and detail is not None:
                attempts.append((outcome, dur, dialects.best_message(detail.message, detail.text)))
            # Surefire lists flaky runs, then reruns; both precede the recorded run's verdict in time.
            extra.sort(key=lambda k: k.tag in _RERUN_TAGS)
            for kid in extra:
                kind = _FLAKY_TAGS.get(kid.tag) or _RERUN_TAGS[kid.tag]
                # the element's own whitespace runs into its <stackTrace> text: trim it
                d = Detail(kind, kid.attrib.get("message"), kid.attrib.get("type"), kid.text.value().strip())
                d.out = kid.out.value() if kid.out is not None else ""
                d.err = kid.err.value() if kid.err is not None else ""
                took = parse_seconds(kid.attrib.get("time") or "0")
                attempts.append((kind, took, dialects.best_message(d.message, d.text)))
                if detail is None or outcome is PASSED:
                    detail = d
            if outcome is PASSED:
                # flakyFailure: earlier runs failed, the recorded (last) run passed.
                attempts.append((PASSED, dur, None))
                outcome = FLAKY
        if detail is None:
            if outcome is SKIPPED and skip_msg:
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
        # A suite registered at its end tag (counts but no testcases) is already off the stack; the root's leaves
        # it empty.
        if self.stack and frame is self.stack[-1]:
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
            acc.suites[idx][2] += parse_seconds(time_attr)
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


def parse_seconds(value: str) -> float:
    """A `time` attribute in seconds, also when written "1,234.5" or "0.5s"; 0.0 when it cannot be read."""
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
