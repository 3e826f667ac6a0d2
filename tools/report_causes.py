"""Why a test failed: the cause class of a failure and the line of data it was read from."""

from __future__ import annotations

import functools
import re
from enum import StrEnum

from .models import Failure, Outcome
from .report_text import clip


class Cause(StrEnum):
    """Why a test failed, derived from its failure data."""

    ASSERTION = "assertion"
    TIMEOUT = "timeout"
    PANIC = "panic"
    DATA_RACE = "data race"
    BUILD = "build"
    NETWORK = "network"
    AUTH = "auth"
    RATE_LIMIT = "rate limit"
    ENVIRONMENT = "environment"
    UNCLASSIFIED = "unclassified"


# Checked in this order: the first match names the cause. Signals a runtime prints
# (race, panic, build, timeout) beat words a test author may have put in an assertion.
CAUSE_PATTERNS: tuple[tuple[Cause, re.Pattern[str]], ...] = (
    (Cause.DATA_RACE, re.compile(r"WARNING: DATA RACE|race detected during execution of test")),
    (Cause.PANIC, re.compile(r"^\s*panic: |goroutine \d+ \[running\]", re.MULTILINE)),
    (
        Cause.BUILD,
        re.compile(
            r"\[build failed\]|build failed|\bundefined: |declared and not used|imported and not used|"
            r"syntax error|SyntaxError|ImportError|errors? during collection|cannot use .+ as .+ value",
        ),
    ),
    (
        Cause.TIMEOUT,
        re.compile(
            r"test timed out after|deadline exceeded|i/o timeout|\btimed out\b|TimeoutError|ReadTimeout|"
            r"ConnectTimeout|Timeout exceeded",
            re.IGNORECASE,
        ),
    ),
    (
        Cause.RATE_LIMIT,
        re.compile(r"rate.?limit|\b429\b|too many requests|x-ratelimit-remaining:\s*0|RateLimitError", re.IGNORECASE),
    ),
    (
        Cause.AUTH,
        re.compile(
            r"\b401\b|\b403\b|unauthori[sz]ed|bad credentials|forbidden|authentication (?:failed|required)|"
            r"invalid token|requires authentication",
            re.IGNORECASE,
        ),
    ),
    (
        Cause.NETWORK,
        re.compile(
            r"connection refused|connection reset|no such host|dial tcp|network is unreachable|broken pipe|"
            r"unexpected EOF|ConnectionError|ConnectError|RemoteDisconnected|TLS handshake|name resolution",
            re.IGNORECASE,
        ),
    ),
    (
        Cause.ENVIRONMENT,
        re.compile(
            r"executable file not found|command not found|No such file or directory|permission denied|"
            r"ModuleNotFoundError|environment variable|GITHUB_TOKEN|GH_TOKEN|address already in use|"
            r"too many open files|no space left on device|is not on PATH",
            re.IGNORECASE,
        ),
    ),
    (
        Cause.ASSERTION,
        re.compile(
            r"AssertionError|\bassert\b|Error Trace|Not equal|expected|\bwant\b|\bgot\b|!=|mismatch|should (?:be|have)",
            re.IGNORECASE,
        ),
    ),
)
# Literal fragments (lower case) one of which a pattern's match must contain: a cheap `in` test
# skips most regex searches, which on long excerpts cost milliseconds each.
NEEDLES: dict[Cause, tuple[str, ...]] = {
    Cause.DATA_RACE: ("data race", "race detected"),
    Cause.PANIC: ("panic: ", "goroutine "),
    Cause.BUILD: (
        "build failed", "undefined: ", "declared and not used", "imported and not used", "syntax error",
        "syntaxerror", "importerror", "during collection", "cannot use ",
    ),
    Cause.TIMEOUT: ("timed out", "deadline exceeded", "timeout"),
    Cause.RATE_LIMIT: ("rate", "429", "too many requests"),
    Cause.AUTH: ("401", "403", "unauthori", "credentials", "forbidden", "authentication", "invalid token"),
    Cause.NETWORK: (
        "connection", "no such host", "dial tcp", "unreachable", "broken pipe", "eof", "connecterror",
        "remotedisconnected", "tls handshake", "name resolution",
    ),
    Cause.ENVIRONMENT: (
        "not found", "no such file", "permission denied", "modulenotfounderror", "environment variable",
        "github_token", "gh_token", "address already in use", "too many open files", "no space left", "not on path",
    ),
}  # fmt: skip
PARSER_KINDS: dict[str, Cause] = {
    "data-race": Cause.DATA_RACE,
    "race": Cause.DATA_RACE,
    "panic": Cause.PANIC,
    "timeout": Cause.TIMEOUT,
    "build": Cause.BUILD,
}


CLASSIFY_HEAD = 600
CLASSIFY_TAIL = 1400


def classify(failure: Failure) -> tuple[Cause, str]:
    """The cause class of a failure and the line of data it was read from."""
    return _classify(failure.message, failure.excerpt, failure.kind, failure.outcome)


@functools.lru_cache(maxsize=4096)
def _classify(message: str, excerpt: str, kind: str | None, outcome: Outcome) -> tuple[Cause, str]:
    # A failure prints its cause near the start (panic:, WARNING: DATA RACE) or the end (the
    # assertion, "race detected"); the middle of a long excerpt is stack frames. Bounding the text
    # keeps nine patterns over hundreds of failures well inside the report's time budget.
    if len(excerpt) > CLASSIFY_HEAD + CLASSIFY_TAIL:
        excerpt = excerpt[:CLASSIFY_HEAD] + "\n" + excerpt[-CLASSIFY_TAIL:]
    failure = Failure(test="", message=message, excerpt=excerpt, kind=kind, outcome=outcome)
    text = "\n".join(part for part in (message, excerpt) if part)
    strong = PARSER_KINDS.get(failure.kind or "")
    if strong is not None:
        return strong, f"the test output parser marked it {failure.kind!r}" + _quote_match(strong, text)
    lower = text.lower()
    for cause, pattern in CAUSE_PATTERNS:
        needles = NEEDLES.get(cause)
        if needles is not None and not any(n in lower for n in needles):
            continue
        match = pattern.search(text)
        if match:
            return cause, _evidence(failure, text, match)
    if failure.kind == "assertion" or (failure.outcome is Outcome.FAILED and text.strip()):
        return (
            Cause.ASSERTION,
            "the test reported a failure of its own check; no panic, timeout, network or build signal",
        )
    return Cause.UNCLASSIFIED, "no message or output was captured for this failure"


def _quote_match(cause: Cause, text: str) -> str:
    for c, pattern in CAUSE_PATTERNS:
        if c is cause:
            match = pattern.search(text)
            if match:
                return f"; output line: {_line_of(text, match.start())}"
    return ""


def _evidence(failure: Failure, text: str, match: re.Match[str]) -> str:
    token = match.group(0).strip()
    if match.start() < len(failure.message or ""):
        return f"the message contains {token!r}"
    return f"the output contains {token!r}: {_line_of(text, match.start())}"


def _line_of(text: str, pos: int) -> str:
    start = text.rfind("\n", 0, pos) + 1
    end = text.find("\n", pos)
    return clip(text[start : end if end != -1 else len(text)].strip(), 200)
