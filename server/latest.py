"""Keep each tool's latest result for build_report (`.itest/latest/<kind>.json`).

Saving is a side effect that must never cost the caller its result: a full disk
or an unwritable `.itest/` is logged to stderr and the result is still returned.
"""

from __future__ import annotations

import logging

from pydantic import BaseModel

from itest_mcp.tools.errors import ItestError
from itest_mcp.tools.repo import Project

log = logging.getLogger("itest_mcp")


def remember(project: Project, kind: str, result: BaseModel) -> None:
    """Store `result` as the latest `kind` result; failures are logged, never raised."""
    from itest_mcp.tools.results_store import save_latest

    try:
        save_latest(project, kind, result)
    except (OSError, ItestError) as exc:
        log.warning("could not keep the latest %s result for the report: %s", kind, exc)


def remember_failure(project: Project, kind: str, error: BaseException, source: str | None = None) -> None:
    """Store that the latest `kind` attempt failed, so the report says so instead of leaving a gap."""
    from itest_mcp.tools.results_store import save_error

    try:
        save_error(project, kind, error, source=source)
    except (OSError, ItestError) as exc:
        log.warning("could not keep the failed %s attempt for the report: %s", kind, exc)
