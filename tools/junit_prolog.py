"""The first line of the JUnit reader's hardening: the prolog scan and the XML 1.0 byte filter.

(1) The prolog (everything before the root element, at most 1 MB) is scanned before lxml sees a byte; a
DOCTYPE that declares entities ("billion laughs", XXE) is refused there in well under a millisecond, and so
is a root element that is not `<testsuites>`/`<testsuite>`. This matters because `huge_tree` (which
`junit_target` sets) also relaxes libxml2's own entity-amplification limits. (2) Characters XML 1.0 forbids
(raw control bytes such as ANSI colour escapes in captured output, `&#x1B;`-style references,
U+FFFE/U+FFFF) are replaced by U+FFFD by a streaming byte filter in front of the parser, chunk by chunk,
rather than `recover=True`, which would also hide truncated and corrupt files.
"""

from __future__ import annotations

import codecs
import re
from typing import IO

from .errors import JUnitError

PROLOG_LIMIT = 1 << 20
"""Bytes allowed before the root element; a longer prolog is refused (no JUnit writer needs one)."""

JUNIT_ROOTS = ("testsuites", "testsuite")


class Prolog:
    """What the prolog scan found: the root element's local name, the declared encoding, and whether
    the bytes may go through `Sanitizer` (only ASCII-compatible encodings may)."""

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


def scan_prolog(raw: IO[bytes], name: str) -> Prolog:
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
            return Prolog(local, "utf-8" if declared in ("utf-8", "utf8") else declared, ascii_compatible)
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


class Sanitizer:
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
