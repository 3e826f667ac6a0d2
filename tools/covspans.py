"""Inclusive line spans (merged, subtracted, counted) and range queries over entries sorted by their first line.

An *index* holds one file's entries sorted by start with a running maximum of their ends, so the
entries meeting a line range are found with two bisections.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable
from itertools import accumulate
from operator import itemgetter

Spans = list[tuple[int, int]]
Index = tuple[list[int], list[int], bytes, list[int]]
Ranges = list[tuple[int, int]]
WantRanges = Callable[[str], "Ranges | None"]
"""Given a file name as the profile writes it, its changed line ranges (inclusive), or None."""


def sorted_index(starts: list[int], ends: list[int], flags: bytes) -> Index:
    """The index of entries given in any order (starts, ends, covered flags): sorted by start, with the running
    maximum of ends."""
    if starts != sorted(starts):
        order = sorted(range(len(starts)), key=starts.__getitem__)
        starts = [starts[i] for i in order]
        ends = [ends[i] for i in order]
        flags = bytes(flags[i] for i in order)
    maxend = ends if ends == sorted(ends) else list(accumulate(ends, max))
    return starts, ends, flags, maxend


def query_index(index: Index, ranges: Iterable[tuple[int, int]]) -> list[tuple[Spans, Spans]]:
    """Per range (inclusive), the measured and the uncovered line spans of the indexed entries, each merged."""
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


def intersect_spans(a: Spans, b: Spans) -> Spans:
    """Lines in both merged, sorted span lists."""
    out: Spans = []
    i = j = 0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if lo <= hi:
            out.append((lo, hi))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


def span_lines(spans: list[tuple[int, int]]) -> int:
    """How many lines merged spans hold."""
    if not spans:
        return 0
    total: int = sum(map(_SECOND, spans)) - sum(map(_FIRST, spans))
    return total + len(spans)


_FIRST = itemgetter(0)
_SECOND = itemgetter(1)
