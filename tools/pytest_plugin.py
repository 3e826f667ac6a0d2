"""itest-mcp's pytest plugin: report each test as it finishes, as JSON lines, on a pipe given by env.

Loaded with `-p itest_pytest_plugin` from a copy in the run folder (the phase's
Python need not have itest-mcp installed), so it imports only pytest and the
standard library. Events: `collected` (the count, for progress totals),
`collect_error`, and one `test` event per test after its teardown.
"""

from __future__ import annotations

import json
import os
from typing import Any

_EVENTS_ENV = "ITEST_EVENTS_FD"
_LONGREPR_LIMIT = 8000
_stream: Any = None
_reports: dict[str, list[Any]] = {}


def _emit(event: dict[str, Any]) -> None:
    global _stream
    if _stream is None:
        fd = os.environ.get(_EVENTS_ENV)
        if not fd or not fd.isdigit():
            return
        try:
            _stream = os.fdopen(int(fd), "w", buffering=1, encoding="utf-8", errors="replace", closefd=False)
        except OSError:
            return
    try:
        _stream.write(json.dumps(event) + "\n")
    except (OSError, ValueError):
        pass


def _longrepr(report: Any) -> str:
    text = str(getattr(report, "longreprtext", "") or "")
    return text[-_LONGREPR_LIMIT:]


def _where(report: Any, test_file: str) -> tuple[str, int] | None:
    longrepr = getattr(report, "longrepr", None)
    entries = getattr(getattr(longrepr, "reprtraceback", None), "reprentries", None) or []
    wanted = os.path.realpath(test_file)
    found: tuple[str, int] | None = None
    for entry in entries:
        loc = getattr(entry, "reprfileloc", None)
        if loc is not None and os.path.realpath(str(loc.path)) == wanted:
            found = (test_file, int(loc.lineno))
    if found is None:
        crash = getattr(longrepr, "reprcrash", None)
        if crash is not None:
            found = (str(crash.path), int(crash.lineno))
    return found


def _message(report: Any) -> str:
    crash = getattr(getattr(report, "longrepr", None), "reprcrash", None)
    if crash is not None:
        return str(crash.message).strip()[:1000]
    if isinstance(report.longrepr, tuple) and len(report.longrepr) == 3:
        return str(report.longrepr[2])[:1000]
    text = _longrepr(report).strip().splitlines()
    return text[-1][:1000] if text else ""


def pytest_collection_finish(session: Any) -> None:
    _emit({"event": "collected", "count": len(session.items)})


def pytest_collectreport(report: Any) -> None:
    if report.failed:
        _emit(
            {
                "event": "collect_error",
                "nodeid": report.nodeid,
                "message": _message(report),
                "longrepr": _longrepr(report),
            }
        )


def pytest_runtest_logreport(report: Any) -> None:
    _reports.setdefault(report.nodeid, []).append(report)


def pytest_runtest_logfinish(nodeid: str, location: tuple[str, int | None, str]) -> None:
    reports = _reports.pop(nodeid, [])
    outcome = "passed"
    message = ""
    longrepr = ""
    where: tuple[str, int] | None = None
    duration = 0.0
    for report in reports:
        duration += float(getattr(report, "duration", 0.0) or 0.0)
        if report.when == "call":
            if report.failed:
                outcome = "failed"
            elif report.skipped:
                outcome = "skipped"
        elif report.failed:
            # A failing fixture (setup or teardown) is an error, not a test failure.
            outcome = "error" if outcome != "failed" else outcome
        elif report.skipped and report.when == "setup":
            outcome = "skipped"
        if report.failed or (report.skipped and not message):
            message = message or _message(report)
            longrepr = longrepr or _longrepr(report)
            where = where or (_where(report, location[0]) if report.failed else None)
    event: dict[str, Any] = {
        "event": "test",
        "nodeid": nodeid,
        "outcome": outcome,
        "duration": duration,
        "file": location[0],
        "line": (location[1] + 1) if location[1] is not None else None,
    }
    if outcome != "passed":
        event["message"] = message
        event["longrepr"] = longrepr
    if where is not None:
        event["where_file"], event["where_line"] = where
    _emit(event)
