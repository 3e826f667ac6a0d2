"""Recent CI failures of the branch, attached to an assessment when a GitHub token is available.

assess_changes itself stays synchronous and offline; this step is the only part of
an assessment that talks to GitHub, and it never fails the assessment: no token,
no `origin` on GitHub, or an API error becomes a note instead.
"""

from __future__ import annotations

from collections.abc import Mapping

from .changes import Assessment, CIFailure
from .errors import ItestError
from .repo import Project

CI_TIMEOUT_S = 20.0


async def attach_ci_failures(
    project: Project,
    assessment: Assessment,
    *,
    branch: str | None = None,
    limit: int = 5,
    timeout_s: float = CI_TIMEOUT_S,
    env: Mapping[str, str] | None = None,
    api_url: str | None = None,
) -> Assessment:
    """The assessment plus the branch's recent failed integration runs with their failing tests (or a note why not)."""
    from .ci_failures import recent_integration_failures
    from .github import github_session

    try:
        async with github_session(project, timeout_s=timeout_s, env=env, api_url=api_url) as session:
            if session.client.token is None:
                tried = "; ".join(session.token_tried) or "nothing"
                return _with_note(assessment, f"CI failures not looked up: no GitHub token ({tried})")
            found = await recent_integration_failures(project, session.client, branch=branch, limit=limit)
    except ItestError as exc:
        return _with_note(assessment, f"CI failures not looked up: {exc}")
    failures = [
        CIFailure(
            workflow=run.name,
            run_url=run.html_url,
            branch=run.branch or "",
            conclusion=run.conclusion or "failure",
            failing_tests=[
                f"{test.name}" + (f" [{', '.join(test.phases)}]" if test.phases else "") + f": {test.message[:160]}"
                for job in run.failed_jobs
                for test in job.failing_tests
            ],
        )
        for run in found.runs
    ]
    notes = [f"CI ({found.repo}): {note}" for note in found.notes]
    return assessment.model_copy(update={"ci_failures": failures, "notes": [*assessment.notes, *notes]})


def _with_note(assessment: Assessment, note: str) -> Assessment:
    return assessment.model_copy(update={"notes": [*assessment.notes, note]})
