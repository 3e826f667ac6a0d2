"""Text trimming shared by the report's classification, sections and markdown."""

from __future__ import annotations


def clip(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, the cut marked with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def first_line(text: str) -> str:
    """The first non-blank line of `text`, stripped and clipped to 160 characters."""
    for line in text.splitlines():
        if line.strip():
            return clip(line.strip(), 160)
    return ""
