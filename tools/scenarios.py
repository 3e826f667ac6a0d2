"""Which network edge cases the integration suites exercise, with evidence, and what to write when they do not.

A scenario counts as exercised by a test when a construct typical of it (a 429
with `Retry-After`, `context.WithCancel`, a server that always answers 503 and an
assertion on the exhausted retries, ...) appears inside that test's body (Go test
functions and `t.Run` subtests, pytest test functions); helpers and fixtures are
not evidence. A missing scenario gets a concrete suggestion: which test, in which
file, exercising which function of the code under test.
"""

from __future__ import annotations

import ast
import os
import re
from dataclasses import dataclass
from pathlib import Path

from pydantic import Field

from .discovery import SKIP_DIRS, constraint_tags, read_go_test_file
from .gofuncs import FuncInfo
from .models import Model


@dataclass(frozen=True)
class Scenario:
    id: str
    title: str
    patterns: tuple[tuple[str, str], ...]
    """(matched-construct label, regex) pairs searched in test bodies."""
    signals: tuple[str, ...]
    """Function signals of the code under test this scenario exercises, best first."""
    recipe: str
    """What the suggested Go test does."""
    python_recipe: str = ""
    """The same for a pytest suite, where Go's words (goroutines, -race, context.Canceled) do not apply; "" when the
    Go wording fits both."""


SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "connection-timeout",
        "connection timeout",
        (
            ("client timeout", r"\.Timeout\s*=|timeout\s*=\s*[\d.]"),
            ("context deadline", r"context\.WithTimeout|context\.WithDeadline|DeadlineExceeded"),
            ("timeout error", r"TimeoutError|socket\.timeout|ReadTimeout|ConnectTimeout|i/o timeout"),
        ),
        ("timeout", "http", "net"),
        "serve a handler that sleeps past the client timeout and assert the call fails fast with a timeout",
    ),
    Scenario(
        "context-cancellation",
        "context cancellation",
        (("cancel", r"context\.WithCancel|context\.Canceled|\bcancel\(\)|CancelledError|\.cancel\(\)"),),
        ("context", "select", "sleep"),
        "cancel the context while the request (or a retry wait) is in flight and assert it returns context.Canceled",
        "cancel the task (task.cancel()) while the request (or a retry wait) is in flight and assert CancelledError"
        " propagates without another attempt",
    ),
    Scenario(
        "intermittent-failure",
        "intermittent failure / retry",
        (
            # A server failing its first requests; a test that is itself flaky exercises no retry, so no "flaky".
            (
                "fails first attempts",
                r"(?i)\b(attempts?|calls|hits|requests|tries)(\.Add\(1\)|\s*\+=\s*1)?\s*(<=|<|==)\s*\d",
            ),
            ("retry count", r"(?i)MaxRetries\s*=\s*[1-9]|max_retries\s*=\s*[1-9]"),
        ),
        ("retry", "attempt", "backoff"),
        "fail the first requests with 503, then succeed; assert one result and the number of attempts",
    ),
    Scenario(
        "retry-exhaustion",
        "retry exhaustion / backoff",
        (
            ("exhausted retries", r"(?i)retries_?exhausted|exhaust|gave up|give up"),
            ("backoff timing", r"(?i)backoff.*(elapsed|since)|(elapsed|since).*backoff"),
        ),
        ("retry", "backoff", "attempt", "sleep"),
        "answer 503 to every request and assert the retries-exhausted error after MaxRetries+1 attempts"
        " with growing waits",
        "answer 503 to every request and assert the error raised after max_retries+1 attempts with growing waits",
    ),
    Scenario(
        "rate-limiting",
        "rate limiting (403/429, x-ratelimit-remaining, retry-after)",
        (
            ("429", r"StatusTooManyRequests|\b429\b"),
            ("rate-limit headers", r"(?i)x-ratelimit-remaining|x-ratelimit-reset|retry-after"),
            ("403 rate limit", r"StatusForbidden|\b403\b"),
        ),
        ("ratelimit", "retry", "sleep"),
        "answer 429 with Retry-After and 403 with x-ratelimit-remaining: 0, and assert the wait before the retry",
    ),
    Scenario(
        "auth-failure",
        "authentication failure (401 / expired token)",
        (
            ("401", r"StatusUnauthorized|\b401\b|Unauthorized"),
            ("bad credentials", r"(?i)bad credentials|expired token|invalid token"),
        ),
        ("auth", "token", "http"),
        "answer 401 (Bad credentials) and assert the unauthorized error without retries",
    ),
    Scenario(
        "server-errors",
        "server errors (5xx)",
        (
            ("5xx status", r"StatusInternalServerError|StatusBadGateway|StatusServiceUnavailable|StatusGatewayTimeout"),
            ("5xx code", r"\(\s*50[0-4]\s*,|[Ss]tatus\w*\s*(=|==|:)\s*50[0-4]\b"),
        ),
        ("retry", "http"),
        "answer 500/502/503 and assert the retry or the error the caller sees",
    ),
    Scenario(
        "concurrency",
        "concurrency / races",
        (
            ("goroutines", r"go func|sync\.WaitGroup|errgroup|t\.Parallel\(\)"),
            ("threads", r"threading\.Thread|ThreadPoolExecutor|asyncio\.gather"),
            ("concurrent test", r"(?i)func Test\w*(Concurren|Race|Parallel)|def test_\w*(concurren|race|parallel)"),
        ),
        ("goroutine", "sync", "channel"),
        "call the code from many goroutines at once against a slow server and run the phase with -race",
        "call the code from many threads at once (concurrent.futures.ThreadPoolExecutor) against a slow server and"
        " assert every result and the shared state (counters, caches, sessions)",
    ),
    Scenario(
        "malformed-payload",
        "partial responses / malformed payloads",
        (
            ("malformed body", r"(?i)malformed|invalid json|truncat|partial|not json|garbage"),
            ("decode error", r"json\.SyntaxError|UnexpectedEOF|JSONDecodeError|Hijack"),
        ),
        ("json", "http"),
        "answer 200 with a truncated or invalid JSON body (or hijack and close mid-body) and assert a decode error",
        "answer 200 with a truncated or invalid JSON body (or a Content-Length longer than the body, then close) and"
        " assert the error the caller sees",
    ),
    Scenario(
        "connection-refused",
        "DNS failure / connection refused",
        (
            ("refused", r"(?i)connection refused|ECONNREFUSED|ConnectionRefused"),
            ("dns", r"(?i)no such host|DNSError|\.invalid\b|gaierror"),
        ),
        ("http", "net"),
        "point the client at a closed port (start and close a server) or an unresolvable host and assert the error",
    ),
)


class Evidence(Model):
    """Where a test exercises a scenario."""

    test: str
    file: str
    line: int
    matched: str
    text: str


class Suggestion(Model):
    """The test worth writing for a scenario no integration test exercises."""

    test: str
    file: str
    function: str | None = None
    function_location: str | None = None
    how: str


class ScenarioResult(Model):
    """One scenario for one suite: exercised (with evidence) or a gap (with a suggestion)."""

    scenario: str
    title: str
    suite: str
    exercised: bool
    evidence: list[Evidence] = Field(default_factory=list)
    suggestion: Suggestion | None = None


@dataclass
class TestUnit:
    name: str
    file: str
    start: int
    end: int
    depth: int


@dataclass
class Suite:
    language: str
    files: list[str]
    units: list[TestUnit]


_TEST_PATH = re.compile(r"(^|/)(tests?|testdata)/|_test\.go$|(^|/)test_[^/]*\.py$|_test\.py$|(^|/)conftest\.py$")
# Code with no cancellation to hand (no context.Context, no coroutine) is cancelled by its timeouts.
_NO_CONTEXT_RECIPE = {
    "go": "the code takes no context.Context: give the client a short Timeout, let the server stall the request (or"
    " force a retry wait) and assert the call gives up within the timeout instead of hanging",
    "python": "the code is synchronous (no coroutine to cancel): give the client a short timeout, let the server"
    " stall the request (or force a retry wait) and assert the call raises within the timeout instead of hanging",
}


def is_test_path(path: str) -> bool:
    """Test code, fixtures and test data: never the code a scenario should exercise."""
    return bool(_TEST_PATH.search(path))


_GO_TEST = re.compile(r"^func\s+(Test\w*)\s*\(\s*(\w+)\s+\*testing\.T\s*\)")
_T_RUN = re.compile(r"\b(\w+)\.Run\(\s*\"([^\"]*)\"")


def find_suites(root: Path) -> list[Suite]:
    """The integration suites of the project: Go (test/integration or an `integration` tag) and pytest."""
    go_files: list[str] = []
    py_files: list[str] = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS and not d.startswith(".")]
        rel_dir = os.path.relpath(folder, root).replace(os.sep, "/")
        rel_dir = "" if rel_dir == "." else rel_dir + "/"
        for f in files:
            rel = rel_dir + f
            if f.endswith("_test.go"):
                constraint, _tests = read_go_test_file(Path(folder) / f)
                tags = constraint_tags(constraint)[0] if constraint else set()
                if "integration" in tags or "/integration/" in "/" + rel:
                    go_files.append(rel)
            elif f.endswith(".py") and (f.startswith("test_") or f.endswith("_test.py")):
                if "/integration/" in "/" + rel or _has_integration_mark(Path(folder) / f):
                    py_files.append(rel)
    suites: list[Suite] = []
    if go_files:
        suites.append(Suite("go", sorted(go_files), [u for f in sorted(go_files) for u in _go_units(root, f)]))
    if py_files:
        suites.append(Suite("python", sorted(py_files), [u for f in sorted(py_files) for u in _py_units(root, f)]))
    return suites


def _has_integration_mark(path: Path) -> bool:
    try:
        return "mark.integration" in path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False


def _go_units(root: Path, rel: str) -> list[TestUnit]:
    lines = _read_lines(root / rel)
    units: list[TestUnit] = []
    i = 0
    while i < len(lines):
        m = _GO_TEST.match(lines[i])
        if not m:
            i += 1
            continue
        start = i
        end = start
        while end + 1 < len(lines) and not lines[end].startswith("}"):
            end += 1
        top = TestUnit(m.group(1), rel, start + 1, end + 1, 0)
        units.append(top)
        for j in range(start + 1, end):
            sub = _T_RUN.search(lines[j])
            if sub:
                indent = len(lines[j]) - len(lines[j].lstrip())
                k = j + 1
                while k < end and not (
                    lines[k].strip().startswith("})") and len(lines[k]) - len(lines[k].lstrip()) == indent
                ):
                    k += 1
                units.append(TestUnit(f"{top.name}/{sub.group(2).replace(' ', '_')}", rel, j + 1, k + 1, 1))
        i = end + 1
    return units


def _py_units(root: Path, rel: str) -> list[TestUnit]:
    try:
        tree = ast.parse((root / rel).read_bytes())
    except (OSError, SyntaxError, ValueError):
        return []
    units: list[TestUnit] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test"):
            units.append(TestUnit(node.name, rel, node.lineno, node.end_lineno or node.lineno, 0))
    return units


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []


# A response the test's server gives (the construct that sets a scenario up), as opposed to a mention.
_SETS_UP = re.compile(
    r"WriteHeader|http\.Error|send_response|send_error|send_header|Header\(\)\.Set|\.route\s*=|"
    r"\(\s*[45]\d\d\s*,|return\s+[45]\d\d\b|status(_code)?\s*=\s*[45]\d\d"
)
_REQUEST_READ = re.compile(
    r"\b(r|req|request)\.(Header|URL|Method|Body|headers|path|method|url)\b|\bself\.(headers|path|command)\b"
)
_REJECTS = re.compile(r"!=|\bnot\b|![\w(]")


def _is_guard(lines: list[str], idx: int) -> bool:
    """Whether line `idx` is (or sits in) an `if` that rejects requests unlike the ones the test sends (`if
    r.Header.Get("Authorization") != "Bearer test-token" { 401 }`): a response the test never triggers."""
    text = lines[idx]
    indent = len(text) - len(text.lstrip())
    for k in range(idx, max(-1, idx - 8), -1):
        stripped = lines[k].lstrip()
        if not stripped:
            continue
        if k == idx or len(lines[k]) - len(stripped) < indent:
            if stripped.startswith(("if ", "elif ", "} else if ")):
                return bool(_REQUEST_READ.search(stripped) and _REJECTS.search(stripped))
            if k != idx:
                return False
    return False


def _innermost(units: list[TestUnit], file: str, line: int) -> TestUnit | None:
    best: TestUnit | None = None
    for u in units:
        if u.file == file and u.start <= line <= u.end and (best is None or u.depth > best.depth):
            best = u
    return best


def assess_scenarios(
    root: Path, functions: dict[str, dict[str, list[FuncInfo]]], evidence_limit: int = 3
) -> list[ScenarioResult]:
    """Each scenario for each integration suite. `functions` maps language → file → functions under test."""
    results: list[ScenarioResult] = []
    for suite in find_suites(root):
        texts = {f: _read_lines(root / f) for f in suite.files}
        compiled = [(s, [(label, re.compile(rx)) for label, rx in s.patterns]) for s in SCENARIOS]
        for scen, pats in compiled:
            best: dict[str, tuple[bool, Evidence]] = {}  # per test: (only a mention, evidence)
            for f in suite.files:
                lines = texts[f]
                for ln, text in enumerate(lines, 1):
                    if text.lstrip().startswith(("//", "#")):
                        continue  # a comment describes, it sets nothing up
                    for label, rx in pats:
                        if rx.search(text):
                            unit = _innermost(suite.units, f, ln)
                            if unit is None and not (label == "concurrent test" and _GO_TEST.match(text)):
                                break
                            if _is_guard(lines, ln - 1):
                                break
                            name = unit.name if unit else text.split()[1].split("(")[0]
                            mention = not _SETS_UP.search(text)
                            if name not in best or (best[name][0] and not mention):
                                ev = Evidence(test=name, file=f, line=ln, matched=label, text=text.strip()[:160])
                                best[name] = (mention, ev)
                            break
            # Tests whose server sets the scenario up first, then those that only mention it.
            found = [ev for _m, ev in sorted(best.values(), key=lambda b: (b[0], b[1].file, b[1].line))]
            exercised = bool(found)
            results.append(
                ScenarioResult(
                    scenario=scen.id,
                    title=scen.title,
                    suite=suite.language,
                    exercised=exercised,
                    evidence=found[:evidence_limit],
                    suggestion=None if exercised else _suggest(scen, suite, texts, functions.get(suite.language, {})),
                )
            )
    return results


def _suggest(scen: Scenario, suite: Suite, texts: dict[str, list[str]], funcs: dict[str, list[FuncInfo]]) -> Suggestion:
    funcs = {path: fns for path, fns in funcs.items() if not is_test_path(path)}
    how = scen.python_recipe if suite.language == "python" and scen.python_recipe else scen.recipe
    slug = scen.id.replace("-", "_")
    if scen.id == "context-cancellation" and not any("context" in fn.signals for fns in funcs.values() for fn in fns):
        how = _NO_CONTEXT_RECIPE[suite.language]
        slug = "stalled_call_times_out"
    target_fn, target_loc = _pick_function(scen, funcs)
    file = _pick_file(scen, suite)
    if suite.language == "go":
        parent = next(
            (u.name.split("/")[0] for u in suite.units if u.file == file and u.depth == 1),
            None,
        )
        camel = "".join(p.capitalize() for p in slug.split("_"))
        test = f"{parent}/{slug}" if parent else f"Test{camel}"
    else:
        test = f"test_{slug}"
    if target_fn:
        how = f"{how}; exercise {target_fn} ({target_loc})"
    return Suggestion(test=test, file=file, function=target_fn, function_location=target_loc, how=how)


def _pick_file(scen: Scenario, suite: Suite) -> str:
    keys = ("race", "concurr") if scen.id == "concurrency" else ("network", "edge", "client", "api")
    for key in keys:
        for f in suite.files:
            if key in f.rsplit("/", 1)[-1].lower():
                return f
    counts = {f: sum(1 for u in suite.units if u.file == f) for f in suite.files}
    return max(suite.files, key=lambda f: (counts[f], f))


def _pick_function(scen: Scenario, funcs: dict[str, list[FuncInfo]]) -> tuple[str | None, str | None]:
    best: tuple[int, int, str, str] | None = None
    for file, fns in sorted(funcs.items()):
        for fn in fns:
            score = sum(len(scen.signals) - i for i, s in enumerate(scen.signals) if s in fn.signals)
            if score <= 0:
                continue
            key = (score, fn.end - fn.line, fn.name, f"{file}:{fn.line}")
            if best is None or key[:2] > best[:2]:
                best = key
    if best is None:
        return None, None
    return best[2], best[3]
