"""The one exception tree of itest-mcp.

Every error a caller can cause or the environment can produce is one of these.
The MCP edge maps `ItestError` to `ToolError` with `str(err)` as the message, and
the CLI prints it and exits 2, so a message must say what was wrong (quoting the
bad value, the file, the line) and what to do about it. Never put a token in one.

    ItestError
    ├── InputError                 a value the caller gave is unusable
    │   ├── UnsafeArgumentError    looks like a flag (starts with "-") where a value belongs
    │   ├── PathOutsideRepoError   escapes the project root (../, absolute, symlink)
    │   ├── UnknownPhaseError      names no phase (lists the known ones)
    │   └── NotFoundError          a run id, file or glob that matches nothing
    ├── RepoError                  the repository itself
    │   ├── NotAGitRepositoryError
    │   └── GitError               a git command failed (its stderr, bounded)
    ├── ConfigError                itest.toml / [tool.itest] invalid (file, key, line)
    ├── ToolNotFoundError          go / pytest / magex / gh missing (how to install)
    ├── ParseError                 untrusted input that cannot be read (file, position)
    │   ├── JUnitError
    │   └── CoverageError
    ├── RunError                   a phase could not be started or supervised
    ├── GitHubError                talking to the GitHub API
    │   ├── TokenError             missing or malformed token (never the value)
    │   ├── GitHubAuthError        401 / 403 without rate limiting
    │   ├── RateLimitError         primary or secondary rate limit that outlasts the deadline
    │   └── DeadlineError          a wait or retry would pass the caller's deadline
    ├── HistoryError               history.db corrupt, locked or unwritable
    └── FaultError                 a fault profile or proxy that cannot be used
"""

from __future__ import annotations

from collections.abc import Iterable


class ItestError(Exception):
    """Base of every error itest-mcp raises on purpose."""


class InputError(ItestError):
    """A value the caller gave is unusable."""


class UnsafeArgumentError(InputError):
    """A value that would be read as a command-line flag."""

    def __init__(self, what: str, value: str) -> None:
        super().__init__(
            f"{what} {value!r} starts with '-', which a command would read as an option; "
            f"pass a plain value (a name, ref or path)"
        )
        self.what = what
        self.value = value


class PathOutsideRepoError(InputError):
    """A caller-given path that resolves outside the project root."""

    def __init__(self, value: str, root: str, reason: str) -> None:
        super().__init__(
            f"path {value!r} is outside the project root {root} ({reason}); give a path inside the repository"
        )
        self.value = value
        self.root = root


class UnknownPhaseError(InputError):
    """A phase name that names no configured or discovered phase."""

    def __init__(self, name: str, known: Iterable[str]) -> None:
        known_list = sorted(known)
        shown = ", ".join(known_list) if known_list else "none (add phases to itest.toml)"
        super().__init__(f"unknown phase {name!r}; known phases: {shown}")
        self.name = name
        self.known = known_list


class NotFoundError(InputError):
    """A run id, file or glob that matches nothing."""


class RepoError(ItestError):
    """The repository cannot be used."""


class NotAGitRepositoryError(RepoError):
    """The project root is not inside a git work tree."""


class GitError(RepoError):
    """A git command failed."""


class ConfigError(ItestError):
    """The project's itest configuration is invalid."""

    def __init__(self, file: str, message: str, key: str | None = None, line: int | None = None) -> None:
        where = file
        if line is not None:
            where += f":{line}"
        if key:
            where += f" [{key}]"
        super().__init__(f"{where}: {message}")
        self.file = file
        self.key = key
        self.line = line


class ToolNotFoundError(ItestError):
    """An external program the phase needs is not on PATH."""

    def __init__(self, program: str, hint: str) -> None:
        super().__init__(f"{program!r} was not found on PATH; {hint}")
        self.program = program


class ParseError(ItestError):
    """Untrusted input (XML, coverage, test streams) that cannot be read."""


class JUnitError(ParseError):
    """A JUnit XML file that cannot be read."""


class CoverageError(ParseError):
    """A coverage file that cannot be read."""


class RunError(ItestError):
    """A phase could not be started or supervised."""


class GitHubError(ItestError):
    """A failure talking to the GitHub API."""


class TokenError(GitHubError):
    """A missing or malformed token (the message never holds the value)."""


class GitHubAuthError(GitHubError):
    """GitHub refused the credentials (401) or the permission (403 without rate limiting)."""


class RateLimitError(GitHubError):
    """A primary or secondary rate limit that outlasts the caller's deadline."""


class DeadlineError(GitHubError):
    """A wait or a retry would pass the caller's deadline."""


class HistoryError(ItestError):
    """The history database is corrupt, locked or unwritable."""


class FaultError(ItestError):
    """A fault profile or the fault proxy cannot be used."""
