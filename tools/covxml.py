"""Read Cobertura and JaCoCo XML coverage reports, streaming with lxml's iterparse (DOCTYPE entities refused)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .covmodel import LINE_MAX, CoverageData, bad_count, bad_line_number, line_file, parse_count
from .errors import CoverageError

COBERTURA = "cobertura"
JACOCO = "jacoco"


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


@contextmanager
def _iterparse(path: Path, tags: tuple[str, ...], events: tuple[str, ...] = ("end",)) -> Iterator[Any]:
    """lxml's iterparse over a file this function closes, also when a reader stops early on a bad value."""
    from lxml import etree

    _refuse_entities(path)
    try:
        fh = open(path, "rb")
    except OSError as exc:
        raise CoverageError(f"cannot read coverage file {str(path)!r}: {exc.strerror or exc}") from exc
    with fh:
        yield etree.iterparse(
            fh,
            events=events,
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


def read_cobertura(path: Path) -> CoverageData:
    """Read Cobertura XML (coverage.py, gocover-cobertura, ...): one parse event per <class>."""
    from lxml import etree

    data = CoverageData(source=str(path), format=COBERTURA)
    pending: dict[str, tuple[list[int], list[bool]]] = {}
    try:
        with _iterparse(path, ("source", "class")) as events:
            for _event, el in events:
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
                            num = int(ln.get("number"))
                            if not 0 <= num <= LINE_MAX:
                                raise bad_line_number(f"{path}:{ln.sourceline}", num)
                            text = ln.get("hits", "0")
                            count = 0.0 if text == "0" else parse_count(text)
                            if count is None:
                                raise bad_count(f"{path}:{ln.sourceline}", f"<line> hits={text!r}")
                            nums.append(num)
                            hits.append(count > 0)
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
        data.files[name] = line_file(name, nums, hits, None)
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
        with _iterparse(path, ("package", "class", "sourcefile"), ("start", "end")) as events:
            for event, el in events:
                if event == "start":
                    if el.tag == "package":
                        package = el.get("name", "")
                    continue
                if el.tag == "class":
                    src = el.get("sourcefilename")
                    for m in el.iterchildren("method"):
                        line = int(m.get("line", "0") or 0)
                        if not 0 <= line <= LINE_MAX:
                            raise bad_line_number(f"{path}:{m.sourceline}", line)
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
                        num = int(ln.get("nr"))
                        if not 0 <= num <= LINE_MAX:
                            raise bad_line_number(f"{path}:{ln.sourceline}", num)
                        ci = int(ln.get("ci", "0"))
                        if ci < 0:
                            raise bad_count(f"{path}:{ln.sourceline}", f"<line> ci={ln.get('ci')!r}")
                        nums.append(num)
                        hits.append(ci > 0)
                    data.entries_read += len(nums)
                    fd = line_file(name, nums, hits, data.files.get(name))
                    fd.functions = methods.pop(name, [])
                    data.files[name] = fd
                    _clear(el)
    except etree.XMLSyntaxError as exc:
        raise _xml_error(path, exc, "JaCoCo") from exc
    except (TypeError, ValueError) as exc:
        raise CoverageError(f"{str(path)!r}: a <line> has a missing or non-numeric nr/ci ({exc})") from exc
    return data
