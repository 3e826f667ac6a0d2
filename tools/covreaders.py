"""Read a coverage file in any supported format: sniff its format, then hand it to that format's reader.

Readers: Go coverprofiles (`covgo`), Cobertura and JaCoCo XML (`covxml`) and LCOV (`covlcov`);
each yields a `covmodel.CoverageData`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from .covgo import GO, GO_LINE, read_go_profile, snippet
from .covlcov import LCOV, read_lcov
from .covmodel import CoverageData
from .covspans import Ranges, WantRanges
from .covxml import COBERTURA, JACOCO, read_cobertura, read_jacoco
from .errors import CoverageError

FORMATS = (GO, COBERTURA, LCOV, JACOCO)
SNIFF = 4096


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
    if GO_LINE.match(first):
        raise CoverageError(
            f"Go coverage profile {str(path)!r} has no 'mode:' line (it starts with {snippet(head)}); "
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
        f"{str(path)!r} is in no known coverage format (it starts with {snippet(head)}); "
        f"give a Go coverprofile, Cobertura XML, LCOV or JaCoCo XML file"
    )


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
