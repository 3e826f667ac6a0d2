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
from .proctree import PeakTracker

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


def go_helper_env() -> dict[str, str]:
    """Environment for `go` building or running our own helper programs: the installed toolchain, no workspace,
    none of the user's GOFLAGS, no cgo (the helpers use only the standard library)."""
    return {**os.environ, "GOTOOLCHAIN": "local", "GOWORK": "off", "GOFLAGS": "", "CGO_ENABLED": "0"}


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


# -- supervised runs (run_phase): own session, streamed output, whole-group kill ------------------

LOG_LIMIT = 1024 * 1024 * 1024
"""Bytes of child output written to a run's log; beyond it the log says so and the rest is only parsed."""
TAIL_BYTES = 64 * 1024
"""Bytes of the newest output kept in memory (for error messages when nothing else explains a failure)."""
MAX_LINE = 1024 * 1024
"""A line longer than this is handed on in pieces, so one endless line cannot fill memory."""
KILL_GRACE_S = 1.0
"""Between SIGTERM and SIGKILL; with reaping, a stopped run is gone within 2 s."""
READ_CHUNK = 256 * 1024
POLL_MAX_S = 0.1
QUIET_S = 1.0
"""Longest pause between two looks at a quiet child's log (progress stays well within its 1 s bar)."""
LOG_LIMIT_NOTE = b"\n[itest-mcp: log limit reached; further output was parsed but not written]\n"


@dataclass
class Supervised:
    """What a supervised child did: exit, how it ended, what it cost, the newest output."""

    pid: int
    returncode: int | None = None
    timed_out: bool = False
    cancelled: bool = False
    wall_s: float = 0.0
    cpu_user_s: float = 0.0
    cpu_system_s: float = 0.0
    peak_rss_mb: float | None = None
    log_bytes: int = 0
    log_truncated: bool = False
    tail: bytes = b""
    left_behind: list[int] | None = None
    """Pids of the group still alive after the kill (should always be empty)."""


class LineSplitter:
    """Split a byte stream into lines (newline kept), cutting lines longer than MAX_LINE."""

    def __init__(self, sink: _abc.Callable[[bytes], None], max_line: int = MAX_LINE) -> None:
        self.sink = sink
        self.max_line = max_line
        self._buf = b""

    def feed(self, data: bytes) -> None:
        buf = self._buf + data if self._buf else data
        start = 0
        sink = self.sink
        while True:
            end = buf.find(b"\n", start)
            if end < 0:
                break
            sink(buf[start : end + 1])
            start = end + 1
        rest = buf[start:]
        while len(rest) >= self.max_line:
            sink(rest[: self.max_line])
            rest = rest[self.max_line :]
        self._buf = rest

    def close(self) -> None:
        if self._buf:
            self.sink(self._buf)
            self._buf = b""


class _Tail:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.parts: list[bytes] = []
        self.size = 0

    def add(self, data: bytes) -> None:
        if len(data) >= self.limit:
            self.parts = [data[-self.limit :]]
            self.size = len(self.parts[0])
            return
        self.parts.append(data)
        self.size += len(data)
        while self.size - len(self.parts[0]) >= self.limit:
            self.size -= len(self.parts.pop(0))

    def value(self) -> bytes:
        return b"".join(self.parts)[-self.limit :]


BATCH_S = 0.005
"""While a child prints, look at its log this often, so one read takes many lines at once."""


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def group_members(pgid: int) -> list[int]:
    """Pids whose process group is `pgid` (from /proc; empty where /proc is missing)."""
    members: list[int] = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return members
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue
        # Fields after the command name (which may hold spaces and parentheses): state ppid pgrp ...
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] != b"Z":
            members.append(int(entry))
    return members


async def run_supervised(
    argv: list[str],
    *,
    cwd: Path | str,
    env: dict[str, str] | None,
    log_path: Path,
    on_line: _abc.Callable[[bytes], None],
    timeout_s: float,
    side_channel: _abc.Callable[[bytes], None] | None = None,
    side_channel_env: str = "ITEST_EVENTS_FD",
    grace_s: float = KILL_GRACE_S,
    log_limit: int = LOG_LIMIT,
    tail_bytes: int = TAIL_BYTES,
    on_start: _abc.Callable[[int], None] | None = None,
    mark: _abc.Callable[[str], None] | None = None,
) -> Supervised:
    """Run `argv` in its own session, stream stdout+stderr to `log_path` and `on_line`, and supervise it.

    On timeout the whole process group gets SIGTERM, then SIGKILL after `grace_s`;
    on cancellation (client cancel, disconnect, Ctrl-C) the same happens before the
    cancellation propagates. `side_channel` receives the lines a child writes to the
    pipe whose fd number is put in the env var `side_channel_env` (our pytest plugin).
    `mark(name)` (a timeline for benches) hears spawn, first byte, child exit and pipes drained.
    """
    import signal
    import time

    import anyio

    if not argv or not isinstance(argv, list):
        raise RunError(f"refusing to run {argv!r}: a command is a non-empty list of arguments")
    program = require_program(argv[0]) if os.sep not in argv[0] else argv[0]
    child_env = dict(os.environ if env is None else env)
    side_r = side_w = -1
    if side_channel is not None:
        side_r, side_w = os.pipe()
        child_env[side_channel_env] = str(side_w)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    # The child writes straight into the log: a regular file costs it no wake-ups and never blocks it the
    # way a full pipe does (a pipe made a 2,000-test go run ~5% slower). We read the same file behind it.
    log_w = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
    out_fd = os.open(log_path, os.O_RDONLY | os.O_CLOEXEC)
    base = os.fstat(log_w).st_size  # what the caller wrote before (the "$ argv" header) is not output
    pos = base
    started = time.monotonic()
    try:
        proc = subprocess.Popen(
            [program, *argv[1:]],
            cwd=str(cwd),
            env=child_env,
            stdin=subprocess.DEVNULL,
            stdout=log_w,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            pass_fds=(side_w,) if side_w >= 0 else (),
        )
    except OSError as exc:
        for fd in (side_r, side_w, log_w, out_fd):
            if fd >= 0:
                os.close(fd)
        raise RunError(f"could not start {argv[0]!r} in {cwd}: {exc.strerror or exc}") from exc
    if side_w >= 0:
        os.close(side_w)
    if mark is not None:
        mark("spawned")
    result = Supervised(pid=proc.pid)
    memory = PeakTracker(proc.pid)
    if on_start is not None:
        on_start(proc.pid)
    pgid = proc.pid
    if side_r >= 0:
        os.set_blocking(side_r, False)
    tail = _Tail(tail_bytes)
    splitter = LineSplitter(on_line)
    side_splitter = LineSplitter(side_channel) if side_channel is not None else None
    reaped: list[tuple[int, object]] = []

    def consume(data: bytes) -> None:
        if mark is not None and not result.log_bytes:
            mark("first byte")
        result.log_bytes += len(data)
        tail.add(data)
        splitter.feed(data)

    def read_log() -> int:
        """Parse the next chunk the child appended to the log; 0 when there is nothing new yet."""
        nonlocal pos
        try:
            data = os.pread(out_fd, READ_CHUNK, pos)
        except OSError:
            return 0
        if not data:
            return 0
        pos += len(data)
        consume(data)
        keep = base + log_limit + (len(LOG_LIMIT_NOTE) if result.log_truncated else 0)
        if pos > keep:
            # Over the limit: what was read is parsed; cut the file back (the child appends with O_APPEND, so
            # its next write lands after the cut). Output racing the cut can go unparsed; only past the limit.
            os.ftruncate(log_w, keep)
            if not result.log_truncated:
                result.log_truncated = True
                os.write(log_w, LOG_LIMIT_NOTE)
                keep += len(LOG_LIMIT_NOTE)
            pos = keep
        return len(data)

    async def pump_log(exited: anyio.Event) -> None:
        """Follow the log while the child runs; after `exited`, read what is left and stop."""
        idle = BATCH_S
        quiet_since = time.monotonic()
        while True:
            if read_log():
                idle = BATCH_S
                quiet_since = 0.0
                # One chunk at a time: a backlog must not hold progress notifications (same loop) back.
                await anyio.sleep(0)
                continue
            if exited.is_set():
                return
            # Nothing new: wait a batch (go writes one event per write(); reading many at once is cheaper).
            # Parsing must keep pace with the child, or it lands after the exit, on the caller's time; only a
            # child quiet for QUIET_S (a slow test, a build) is looked at less often. Its exit wakes us at once.
            now = time.monotonic()
            if not quiet_since:
                quiet_since = now
            elif now - quiet_since > QUIET_S:
                idle = min(idle * 2, POLL_MAX_S)
            with anyio.move_on_after(idle):
                await exited.wait()

    def drain(fd: int, sink: _abc.Callable[[bytes], None]) -> bool:
        """Read what is there now; True at EOF."""
        while True:
            try:
                data = os.read(fd, READ_CHUNK)
            except BlockingIOError:
                return False
            except OSError:
                return True
            if not data:
                return True
            sink(data)

    async def pump(fd: int, sink: _abc.Callable[[bytes], None]) -> None:
        while True:
            try:
                data = os.read(fd, READ_CHUNK)
            except BlockingIOError:
                await anyio.wait_readable(fd)
                # go writes one event per write(); waking per event costs more than parsing it. Let a
                # batch gather (the pipe was enlarged so the child does not block meanwhile).
                await anyio.sleep(BATCH_S)
                continue
            except OSError:
                return
            if not data:
                return
            sink(data)
            # One chunk at a time: a backlog must not hold progress notifications (same loop) back.
            await anyio.sleep(0)

    def try_reap() -> bool:
        if reaped:
            return True
        try:
            wpid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        except ChildProcessError:
            reaped.append((0, None))
            return True
        if wpid == 0:
            return False
        reaped.append((status, usage))
        return True

    async def wait_exit() -> None:
        pidfd = -1
        try:
            pidfd = os.pidfd_open(proc.pid)
        except (AttributeError, OSError):
            pidfd = -1
        try:
            while not try_reap():
                if pidfd >= 0:
                    with anyio.move_on_after(0.5):
                        await anyio.wait_readable(pidfd)
                else:
                    await anyio.sleep(0.02)
        finally:
            if pidfd >= 0:
                os.close(pidfd)

    async def stop_group() -> None:
        """SIGTERM the group, SIGKILL what is left after the grace period, reap the leader."""
        _signal_group(pgid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            try_reap()
            if reaped and not _group_alive(pgid):
                return
            await anyio.sleep(0.02)
        _signal_group(pgid, signal.SIGKILL)
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            if try_reap() and not _group_alive(pgid):
                return
            await anyio.sleep(0.01)

    async def sample_memory() -> None:
        while True:
            await anyio.sleep(memory.next_interval())
            memory.sample()

    async def run_all() -> None:
        async with anyio.create_task_group() as tg:
            pumps_done = anyio.Event()
            exited = anyio.Event()
            tg.start_soon(sample_memory)

            async def pumps() -> None:
                async with anyio.create_task_group() as inner:
                    inner.start_soon(pump_log, exited)
                    if side_r >= 0 and side_splitter is not None:
                        inner.start_soon(pump, side_r, side_splitter.feed)
                pumps_done.set()

            tg.start_soon(pumps)
            await wait_exit()
            if mark is not None:
                mark("child exit")
            # The leader is gone; whatever it left in its group (a stray test binary, a
            # background server) must not keep the side pipe open, write more output or outlive the run.
            if _group_alive(pgid):
                _signal_group(pgid, signal.SIGKILL)
                with anyio.move_on_after(0.5):
                    while _group_alive(pgid):
                        await anyio.sleep(0.01)
            exited.set()
            with anyio.move_on_after(2.0):
                await pumps_done.wait()
            if mark is not None:
                mark("pipes drained")
            tg.cancel_scope.cancel()

    try:
        with anyio.move_on_after(timeout_s) as scope:
            await run_all()
        if scope.cancelled_caught:
            result.timed_out = True
            with anyio.CancelScope(shield=True):
                await stop_group()
    except BaseException:
        result.cancelled = True
        with anyio.CancelScope(shield=True):
            await stop_group()
        raise
    finally:
        # Keep whatever the child printed before it died.
        while read_log():
            pass
        splitter.close()
        if side_r >= 0 and side_splitter is not None:
            drain(side_r, side_splitter.feed)
            side_splitter.close()
            os.close(side_r)
        os.close(out_fd)
        os.close(log_w)
        result.wall_s = time.monotonic() - started
        result.tail = tail.value()
        if reaped and reaped[0][1] is not None:
            status, usage = reaped[0]
            proc.returncode = os.waitstatus_to_exitcode(int(status))
            result.returncode = proc.returncode
            result.cpu_user_s = float(usage.ru_utime)  # type: ignore[attr-defined]
            result.cpu_system_s = float(usage.ru_stime)  # type: ignore[attr-defined]
            result.peak_rss_mb = memory.peak_mb(int(usage.ru_maxrss))  # type: ignore[attr-defined]
        elif proc.returncode is None:
            # Never reaped (should not happen): record it so Popen does not warn, and say so.
            proc.returncode = -9
        if result.peak_rss_mb is None:
            result.peak_rss_mb = memory.peak_mb(None)
        # The /proc scan only when the group still answers a signal (it costs ~2 ms on a busy host).
        result.left_behind = group_members(pgid) if _group_alive(pgid) else []
    if mark is not None:
        mark("supervisor done")
    return result
