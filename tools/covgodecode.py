"""Decode the numbers of Go coverprofile block lines in bulk, with no per-number Python work.

C-level translations turn digit strings into values or executed flags. For positions, every field
of a run of block lines becomes an 8-byte *lane* (its digits reversed, space-padded): lanes compare
like the numbers they hold, and a few big-integer (SWAR) steps turn eight decimal digits into one
integer at a time.
"""

from __future__ import annotations

import sys
from array import array

POS_SPLIT = bytes.maketrans(b".,", b"  ")
"""Translation splitting a block position `sl.sc,el.ec` into four space-separated numbers."""

DIGIT_FLAGS = bytes.maketrans(b"0123456789", bytes([0] + [1] * 9))
"""Translation of one-digit execution counts into executed flags (0 or 1)."""

_SEP_TABS = bytes.maketrans(b".,: \n", b"\t" * 5)
_NOT_SEP_DIGITS = bytes(c for c in range(256) if c not in b"0123456789.,: \n")
_LANE_DIGITS = bytes.maketrans(b" 0123456789", b"\x00" + bytes(range(10)))
_NONZERO = bytes([0] + [1] * 255)


def _lanes(text: bytes, lines: int) -> tuple[memoryview, int, int] | None:
    """One run of block lines, reversed, as 8-byte lanes: (the lanes, fields per line, fields the file name leaves).

    Field f of line L sits at lane (lines - 1 - L) * per_line + per_line - 1 - f. None when a field
    is longer than 7 characters or a line holds other characters (see `positions_bulk`).
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


def positions_bulk(text: bytes, lines: int) -> tuple[list[int], list[int], bytes] | None:
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


_LANE_MAX = 10**7  # a field of 8 or more characters does not fit a lane (see positions_bulk)
_KEYS: dict[int, int] = {}
LANE_VALUES: dict[int, int] = {}
"""Lane keys already decoded by `lane_value` (callers on hot paths look up here first)."""
_CACHED = 1 << 16  # line numbers cached both ways (bounded: at most this many entries each)


def lane_key(n: int) -> int:
    """A line number as `lane_positions` gives it: ASCII digits, units first, space-padded; order-preserving."""
    key = _KEYS.get(n)
    if key is None:
        if n >= _LANE_MAX:
            return 1 << 64  # above every lane
        key = int.from_bytes(str(max(n, 0))[::-1].encode().ljust(8), "little")
        if len(_KEYS) < _CACHED:
            _KEYS[n] = key
    return key


def lane_value(key: int) -> int:
    """The line number of a lane key."""
    n = LANE_VALUES.get(key)
    if n is None:
        n = int(key.to_bytes(8, "little")[::-1].strip() or b"0")  # an empty field reads as line 0
        if len(LANE_VALUES) < _CACHED:
            LANE_VALUES[key] = n
    return n


def lane_positions(text: bytes, lines: int) -> tuple[list[int], list[int]] | None:
    """Start and end lines of one run of block lines as lane keys, in profile order (no decimal decoding).

    The first steps of `positions_bulk`: each field becomes an 8-byte lane holding its ASCII digits
    units first, space-padded. Read as a little-endian integer, a lane orders like the number it
    holds (a space sorts below every digit, so a longer number has the larger top byte), so
    comparisons with `lane_key` bounds need no conversion; only the few blocks kept are decoded.
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
