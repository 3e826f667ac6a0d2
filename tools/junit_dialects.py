"""What differs between JUnit dialects: recognising the producer, and reading file:line and messages out of text.

Kept apart from the streaming reader in junit_target.py so each stays small. Everything
here runs once per file (dialect) or once per *failing* test (locations,
messages), never per passing test, so plain regular expressions are fast enough.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path

from .models import Location

# -- dialects --------------------------------------------------------------------------------

PYTEST_XUNIT1 = "pytest-xunit1"
PYTEST_XUNIT2 = "pytest-xunit2"
GO_JUNIT_REPORT = "go-junit-report"
GOTESTSUM = "gotestsum"
SUREFIRE = "surefire"
GRADLE = "gradle"
JEST = "jest-junit"
MOCHA = "mocha"
RSPEC = "rspec"
BAZEL = "bazel"
PHPUNIT = "phpunit"
GENERIC = "junit"

GO_DIALECTS = frozenset({GO_JUNIT_REPORT, GOTESTSUM})

_XSI_SCHEMA = "{http://www.w3.org/2001/XMLSchema-instance}noNamespaceSchemaLocation"


def detect_dialect(
    *,
    root_tag: str,
    root: Mapping[str, str],
    suite: Mapping[str, str],
    case: Mapping[str, str] | None,
    properties: frozenset[str],
    file_name: str,
    surefire_elements: bool = False,
) -> str:
    """Name the producer of a JUnit file from its first suite and testcase (a label plus a few reading rules)."""
    suite_name = suite.get("name", "")
    root_name = root.get("name", "")
    case = case or {}
    if "assertions" in case or ("assertions" in suite and "file" in suite):
        return PHPUNIT
    if suite_name.startswith("//") or case.get("status") in ("run", "notrun"):
        return BAZEL
    if suite_name == "pytest" or (root_tag == "testsuites" and root_name == "pytest"):
        return PYTEST_XUNIT1 if ("file" in case or "line" in case) else PYTEST_XUNIT2
    if "go.version" in properties:
        if "id" in suite or "package" in suite:
            return GO_JUNIT_REPORT
        return GOTESTSUM if "timestamp" in suite else GO_JUNIT_REPORT
    if (
        surefire_elements
        or "surefire" in suite.get(_XSI_SCHEMA, "")
        or any(p.startswith(("surefire.", "maven.")) for p in properties)
    ):
        return SUREFIRE
    if root_tag == "testsuite" and suite_name.startswith("rspec") or "seed" in properties and "file" in case:
        return RSPEC
    if "jest" in root_name.lower():
        return JEST
    if root_name == "Mocha Tests" or suite_name == "Root Suite":
        return MOCHA
    if root_tag == "testsuite" and "hostname" in suite and "timestamp" in suite and file_name.startswith("TEST-"):
        return GRADLE
    return GENERIC


# -- messages and kinds ----------------------------------------------------------------------

_GENERIC_MESSAGES = frozenset({"", "failed", "failure", "error", "fail"})
MESSAGE_LIMIT = 500
_NOISE = ("=== RUN", "--- FAIL", "--- PASS", "Traceback")


def best_message(message: str | None, text: str | None) -> str:
    """The failure's message attribute, or the first telling line of its text when the attribute says nothing."""
    msg = (message or "").strip()
    if msg.lower() in _GENERIC_MESSAGES and text:
        for line in text.splitlines():
            line = line.strip()
            if line and not line.startswith(_NOISE) and not _PHPUNIT_ID.match(line):
                msg = line
                break
    if len(msg) > MESSAGE_LIMIT:
        msg = msg[: MESSAGE_LIMIT - 1] + "…"
    return msg


def failure_kind(type_: str | None, message: str, text: str) -> str | None:
    """A cause class (assertion, panic, data-race, timeout) when the failure says so plainly."""
    low_type = (type_ or "").lower()
    if "WARNING: DATA RACE" in text:
        return "data-race"
    if "panic:" in text or "panic:" in message:
        return "panic"
    if "timeout" in low_type or "timed out" in message.lower() or "test timed out" in text:
        return "timeout"
    if "assert" in low_type or "comparisonfailure" in low_type or message.startswith("assert"):
        return "assertion"
    return None


# -- locations -------------------------------------------------------------------------------

# Untrusted text: every pattern starts at a line start, a literal, or a token boundary (the lookbehinds) and
# bounds its repetitions, so a megabyte of "xxxx" costs linear time, not quadratic backtracking.
_SCAN_HEAD = 8192
_SCAN_TAIL = 4096
_TOKEN = r"(?<![\w./\\-])"
_GO_RE = re.compile(r"^[ \t]*([\w./\\-]{1,300}\.go):(\d{1,9}):", re.M)
_GO_TRACE_RE = re.compile(r"^[ \t]*(/[^\s:]{1,500}\.go):(\d{1,9})", re.M)
_PY_RE = re.compile(r'^[ \t]*(?:File ")?([^\s:"]{1,300}\.py)(?::|", line )(\d{1,9})', re.M)
_JAVA_RE = re.compile(
    r"\bat (?:[\w.$@-]{1,100}/{1,2})?([\w$.]{1,300})\.[\w$<>]{1,100}"
    r"\(([\w$]{1,100}\.(?:java|kt|scala|groovy)):(\d{1,9})\)"
)
_JS_RE = re.compile(
    r"\bat (?:[^\n()]{0,300} \()?((?:file://)?[^\s()]{1,300}\.(?:[cm]?js|jsx|[cm]?ts|tsx|vue)):(\d{1,9})(?::\d{1,9})?\)?"
)
_RUBY_RE = re.compile(_TOKEN + r"([\w./-]{1,300}\.rb):(\d{1,9})")
_PHP_RE = re.compile(_TOKEN + r"([\w./\\-]{1,300}\.php):(\d{1,9})")
_ANY_RE = re.compile(_TOKEN + r"([\w./-]{1,300}\.[A-Za-z]{1,5}):(\d{1,9})")
_PHPUNIT_ID = re.compile(r"^[\w\\]+::\w+")
_JAVA_FRAMEWORK = ("org.junit.", "junit.", "java.", "javax.", "jdk.", "sun.", "org.apache.maven.", "org.gradle.")


def find_location(
    text: str,
    *,
    classname: str = "",
    file_attr: str | None = None,
    line_attr: int | None = None,
    root: Path | None = None,
) -> Location | None:
    """file:line of a failure: the testcase's file/line attributes, else the frame a stack trace points at.

    When the attributes name a file and the trace has a frame in that same file, the frame's line wins:
    attributes give the test's first line (pytest, PHPUnit), the frame the line that failed.
    """
    if len(text) > _SCAN_HEAD + _SCAN_TAIL:
        # frames that matter sit at the top (Go, Java, JS) or the bottom (Python) of a trace
        text = text[:_SCAN_HEAD] + "\n" + text[-_SCAN_TAIL:]
    found = _from_trace(text, classname, root) if text else None
    if file_attr:
        rel = repo_relative(file_attr, root)
        if found is not None and found.file.rsplit("/", 1)[-1] == rel.rsplit("/", 1)[-1]:
            return Location(file=rel, line=found.line)
        return Location(file=rel, line=line_attr)
    return found


def _from_trace(text: str, classname: str, root: Path | None) -> Location | None:
    m = _GO_RE.search(text)
    if m:
        return Location(file=_go_path(m.group(1), classname, root), line=int(m.group(2)))
    java = _JAVA_RE.findall(text)
    if java:
        chosen = next((f for f in java if classname and f[0].startswith(classname)), None)
        chosen = chosen or next((f for f in java if not f[0].startswith(_JAVA_FRAMEWORK)), java[0])
        return Location(file=_java_path(chosen[0], chosen[1], root), line=int(chosen[2]))
    py = _PY_RE.findall(text)
    if py:
        tests = [f for f in py if f[0].rsplit("/", 1)[-1].startswith("test_") or f[0].endswith("_test.py")]
        file, line = (tests or py)[-1]
        return Location(file=repo_relative(file, root), line=int(line))
    for regex in (_JS_RE, _RUBY_RE, _PHP_RE):
        frames = [f for f in regex.findall(text) if "node_modules" not in f[0] and "/gems/" not in f[0]]
        if frames:
            file, line = frames[0]
            return Location(file=repo_relative(file.removeprefix("file://"), root), line=int(line))
    m = _GO_TRACE_RE.search(text) or _ANY_RE.search(text)
    if m:
        return Location(file=repo_relative(m.group(1), root), line=int(m.group(2)))
    return None


def repo_relative(file: str, root: Path | None) -> str:
    """`file` relative to `root` when it lies inside it (POSIX); `./` dropped."""
    file = file.replace("\\", "/")
    if root is not None and file.startswith("/"):
        root_s = root.as_posix().rstrip("/") + "/"
        if file.startswith(root_s):
            return file[len(root_s) :]
    return file.removeprefix("./")


def _java_path(frame_class: str, file_name: str, root: Path | None) -> str:
    package = frame_class.split("$", 1)[0].rsplit(".", 1)[0] if "." in frame_class else ""
    rel = f"{package.replace('.', '/')}/{file_name}" if package else file_name
    if root is not None:
        for base in ("src/test/java", "src/main/java", "src/test/kotlin", "src/main/kotlin", "src/test", "src"):
            if (root / base / rel).is_file():
                return f"{base}/{rel}"
    return rel


def _go_path(file: str, package: str, root: Path | None) -> str:
    if "/" in file or root is None:
        return repo_relative(file, root)
    module = _go_module(root)
    if module and package == module:
        return file
    if module and package.startswith(module + "/"):
        return f"{package[len(module) + 1 :]}/{file}"
    return file


@lru_cache(maxsize=32)
def _go_module(root: Path) -> str | None:
    try:
        text = (root / "go.mod").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    m = re.search(r"^module\s+(\S+)", text, re.M)
    return m.group(1) if m else None
