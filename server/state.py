"""What every tool handler shares: the target project, opened lazily so start-up stays cheap."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from itest_mcp.tools.repo import Project, open_project


@dataclass
class ServerState:
    """The `--repo` the server was started with, and the project opened from it on first use."""

    repo: Path
    _project: Project | None = field(default=None, repr=False)

    def project(self) -> Project:
        """The opened project; a bad --repo surfaces as a tool error, not a crash at start-up."""
        if self._project is None:
            self._project = open_project(self.repo)
        return self._project
