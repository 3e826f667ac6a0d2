"""Read a big Go coverprofile with the compiled helper `covprofile.go`, building the same `CoverageData`.

The Python reader (`covgo.read_go_profile`) stays the authority: the helper accepts only
well-formed profiles and exits 3 on anything else, and every failure here (no `go`, a build
error, an unusual profile) returns None so the caller reads the file in Python, with its exact
error messages. The helper is built once per helper source and Go installation into the private
per-user cache folder; a profile under `NATIVE_MIN_BYTES` is read in Python, which is faster than
starting a process for it.

Changed lines: the helper is given candidate names for the changed files (`keys`: a profile name,
or a path it ends with after a "/") and returns the blocks meeting their ranges. `want(name)`,
the real path matcher, still decides per file; where its ranges differ from those the helper
used, the blocks are read back from the profile and joined in Python.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from .covgo import GO, empty_profile_note, join_run
from .covgoblocks import GoProfile, GoSection, executed_flags, read_sections
from .covmodel import ChangedBlocks, CoverageData, FileData, paused_gc
from .covspans import Ranges, WantRanges
from .errors import ItestError
from .process import StreamResult, go_helper_env, run_capture, stream_lines, which
from .usercache import user_cache_dir

log = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("covprofile.go")
NATIVE_MIN_BYTES = 4 << 20
"""Profiles at least this big are read by the helper (below it, starting the helper costs more than it saves)."""
BUILD_TIMEOUT_S = 180.0
READ_TIMEOUT_S = 3600.0
_UNUSABLE = 3  # the helper's exit code for a profile it leaves to the Python reader

_built: dict[str, Path | None] = {}


def helper_path() -> Path | None:
    """The compiled helper, built on first use; None without `go`, a private cache folder or a clean build."""
    go = which("go")
    if go is None:
        return None
    try:
        info = os.stat(go)
        source = SOURCE.read_bytes()
    except OSError:
        return None
    key = hashlib.blake2b(
        b"\0".join([source, os.path.realpath(go).encode(), str(info.st_mtime_ns).encode()]), digest_size=8
    ).hexdigest()
    if key in _built:
        return _built[key]
    folder = user_cache_dir()
    binary = folder / f"covprofile-{key}" if folder is not None else None
    if binary is not None and not binary.is_file():
        binary = _build(binary)
    _built[key] = binary
    return binary


def _build(binary: Path) -> Path | None:
    """`go build` the helper into a temporary name beside `binary`, then rename it (concurrent builds are safe)."""
    fd, tmp_name = tempfile.mkstemp(dir=binary.parent, prefix=f".{binary.name}.", suffix=".tmp")
    os.close(fd)
    try:
        res = run_capture(
            ["go", "build", "-trimpath", "-o", tmp_name, SOURCE.name],
            cwd=SOURCE.parent,
            timeout=BUILD_TIMEOUT_S,
            env=go_helper_env(),
        )
        if res.returncode != 0:
            log.info("coverprofile helper did not build (%s); the Python reader is used", res.stderr.strip()[-300:])
            return None
        os.chmod(tmp_name, 0o700)
        os.replace(tmp_name, binary)
        return binary
    except (ItestError, OSError) as exc:
        log.info("coverprofile helper could not be built (%s); the Python reader is used", exc)
        return None
    finally:
        Path(tmp_name).unlink(missing_ok=True)


def read_go_profile_native(
    path: Path, want: WantRanges | None = None, keys: Mapping[str, Ranges] | None = None
) -> CoverageData | None:
    """`covgo.read_go_profile` through the helper; None when the Python reader must read the file."""
    binary = helper_path()
    if binary is None:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    profile = GoProfile(path, st.st_size, st.st_mtime_ns)
    argv = [str(binary), str(path)]
    listing: list[Ranges] = []
    wanted_file: str | None = None
    try:
        if want is not None and keys:
            # Names with a tab or newline cannot be written to the helper; their files are joined in Python.
            rows = [(k, v) for k, v in keys.items() if v and "\t" not in k and "\n" not in k]
            fd, wanted_file = tempfile.mkstemp(prefix="itest-covkeys-", suffix=".tsv")
            with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as out:
                for key, ranges in rows:
                    out.write(f"{key}\t{','.join(f'{lo}-{hi}' for lo, hi in ranges)}\n")
                    listing.append(ranges)
            argv.append(wanted_file)
        outcome = StreamResult()
        with paused_gc():
            data = _parse(
                stream_lines(argv, cwd=path.parent, timeout=READ_TIMEOUT_S, result=outcome), profile, want, listing
            )
        if outcome.returncode != 0:
            if outcome.returncode != _UNUSABLE:
                log.info("coverprofile helper failed on %s: %s", path, outcome.stderr.strip()[-300:])
            return None
        st2 = os.stat(path)
        if st2.st_size != profile.size or st2.st_mtime_ns != profile.mtime_ns:
            return None  # written to meanwhile: the Python reader reads it (and notices if it keeps changing)
        return data
    except (ItestError, OSError, ValueError) as exc:
        log.info("coverprofile helper could not read %s (%s); the Python reader is used", path, exc)
        return None
    finally:
        if wanted_file is not None:
            Path(wanted_file).unlink(missing_ok=True)


def _parse(lines: Iterable[bytes], profile: GoProfile, want: WantRanges | None, listing: list[Ranges]) -> CoverageData:
    """Build CoverageData from the helper's records (see covprofile.go for the format)."""
    data = CoverageData(source=str(profile.path), format=GO)
    fd: FileData | None = None
    name = b""
    helper_ranges: Ranges | None = None
    pending: list[tuple[FileData, bytes, Ranges]] = []  # files whose changed blocks are joined in Python
    for line in lines:
        tag = line[:1]
        if tag == b"S":
            _s, off, length, count = line.split()
            assert fd is not None
            fd.go_sections.append(GoSection(profile, int(off), int(length), int(count)))
        elif tag == b"B":
            _b, pos, start, end, hit = line.split()
            if fd is not None and fd.changed is not None and helper_ranges is not None:
                fd.changed.blocks[name + b":" + pos] = (int(start), int(end), hit == b"1")
        elif tag == b"F":
            raw, _tab, rest = line[2:].rstrip(b"\n").partition(b"\t")
            measured, covered, blocks, repeated, key = map(int, rest.split())
            name = raw
            fd = FileData(name="", unit="statements", go_totals=(measured, covered), go_blocks=blocks)
            fd.repeated = repeated == 1
            text_name = raw.decode("utf-8", errors="replace")
            data.files[text_name] = fd
            fd.name = text_name
            helper_ranges = None
            ranges = want(text_name) if want is not None else None
            if ranges:
                fd.changed = ChangedBlocks(ranges)
                if key >= 0 and listing[key] == ranges:
                    helper_ranges = ranges
                else:
                    pending.append((fd, raw, ranges))
        elif tag == b"M":
            data.mode = line[2:].strip().decode()
        elif tag == b"E":
            data.entries_read = int(line[2:])
    for pending_fd, raw, _ranges in pending:
        assert pending_fd.changed is not None
        for _profile, nlines, text in read_sections(pending_fd):
            toks = text.split()
            join_run(pending_fd.changed, raw, text, toks, executed_flags(toks[2::3]), nlines)
    if not data.files:
        data.notes.append(empty_profile_note(str(profile.path)))
    return data


def clear_built() -> None:
    """Forget which helpers were built in this process (tests that remove `go` from PATH)."""
    _built.clear()
