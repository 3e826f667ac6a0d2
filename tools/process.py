"""The only place itest-mcp starts a child process.

Arguments are always lists (never a shell string). `run_capture` serves short
questions (git, go list, gh auth token) with a timeout and bounded output; the
supervised runner for test phases (own session, process-group kill, streaming to
the run log) lives here too.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .errors import RunError, ToolNotFoundError

CAPTURE_LIMIT = 64 * 1024 * 1024
"""Bytes of stdout a short command may return; more is a bug in the caller's choice of command."""

INSTALL_HINTS = {
    "go": "install Go from https://go.dev/dl/ (or your package manager) and make sure `go` is on PATH",
    "git": "install git and make sure it is on PATH",
    "pytest": "install pytest into the environment that runs the phase (`pip install pytest`)",
    "magex": "install it with `go install github.com/mrz1836/mage-x/cmd/magex@latest` or run the phase with go",
    "make": "install make (`apt-get install make`)",
    "gh": "install the GitHub CLI, or set GITHUB_TOKEN instead",
}


@dataclass(frozen=True)
class Captured:
    """The result of a short command."""

    returncode: int
    stdout: str
    stderr: str


def which(program: str) -> str | None:
    """The full path of `program` on PATH, or None."""
    return shutil.which(program)


def require_program(program: str) -> str:
    """The full path of `program`, or ToolNotFoundError naming it and how to install it."""
    path = which(program)
    if path is None:
        raise ToolNotFoundError(program, INSTALL_HINTS.get(program, f"install {program} and put it on PATH"))
    return path


def run_capture(
    argv: list[str],
    *,
    cwd: Path | str,
    timeout: float = 60.0,
    env: dict[str, str] | None = None,
    stdin_data: bytes | None = None,
) -> Captured:
    """Run a short command to completion and return its decoded output (invalid UTF-8 replaced)."""
    if not argv or not isinstance(argv, list):
        raise RunError(f"refusing to run {argv!r}: a command is a non-empty list of arguments")
    program = require_program(argv[0]) if os.sep not in argv[0] else argv[0]
    try:
        proc = subprocess.run(
            [program, *argv[1:]],
            cwd=str(cwd),
            input=stdin_data,
            stdin=None if stdin_data is not None else subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            env=env,
            start_new_session=True,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise RunError(f"{argv[0]} {' '.join(argv[1:3])} did not finish within {timeout:.0f} s in {cwd}") from exc
    except OSError as exc:
        raise RunError(f"could not start {argv[0]!r} in {cwd}: {exc.strerror or exc}") from exc
    return Captured(
        returncode=proc.returncode,
        stdout=proc.stdout[:CAPTURE_LIMIT].decode("utf-8", errors="replace"),
        stderr=proc.stderr[-CAPTURE_LIMIT:].decode("utf-8", errors="replace"),
    )


# -- streaming (assess_changes: a diff can be far larger than memory should hold) ----------

import collections.abc as _abc  # noqa: E402


@dataclass
class StreamResult:
    """Filled in when a `stream_lines` generator finishes: the exit code and a bounded stderr tail."""

    returncode: int | None = None
    stderr: str = ""
    timed_out: bool = False


def stream_lines(
    argv: list[str],
    *,
    cwd: Path | str,
    timeout: float = 120.0,
    env: dict[str, str] | None = None,
    result: StreamResult | None = None,
    piece: int | None = None,
) -> _abc.Iterator[bytes]:
    """Yield a command's stdout line by line (bytes, newline kept); `result` gets the exit code at the end.

    The child runs in its own session; closing the generator early (or the timeout)
    kills its whole process group, so an abandoned stream never leaves a child behind.
    With `piece`, a line longer than that is yielded in pieces (only the last ends in a newline).
    """
    import signal
    import tempfile
    import threading

    if not argv or not isinstance(argv, list):
        raise RunError(f"refusing to run {argv!r}: a command is a non-empty list of arguments")
    program = require_program(argv[0]) if os.sep not in argv[0] else argv[0]
    outcome = result if result is not None else StreamResult()
    with tempfile.TemporaryFile() as err_file:
        try:
            proc = subprocess.Popen(
                [program, *argv[1:]],
                cwd=str(cwd),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=err_file,
                env=env,
                start_new_session=True,
                bufsize=1024 * 1024,
            )
        except OSError as exc:
            raise RunError(f"could not start {argv[0]!r} in {cwd}: {exc.strerror or exc}") from exc

        def kill() -> None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

        def on_timeout() -> None:
            outcome.timed_out = True
            kill()

        timer = threading.Timer(timeout, on_timeout)
        timer.daemon = True
        timer.start()
        finished = False
        try:
            stdout = proc.stdout
            assert stdout is not None
            if piece is None:
                yield from stdout
            else:
                yield from iter(lambda: stdout.readline(piece), b"")
            finished = True
        finally:
            timer.cancel()
            if not finished:
                kill()
            if proc.stdout is not None:
                proc.stdout.close()
            outcome.returncode = proc.wait()
            err_file.seek(0, os.SEEK_END)
            size = err_file.tell()
            err_file.seek(max(0, size - 64 * 1024))
            outcome.stderr = err_file.read().decode("utf-8", errors="replace")
    if outcome.timed_out:
        raise RunError(f"{argv[0]} {' '.join(argv[1:3])} did not finish within {timeout:.0f} s in {cwd}")
