"""The compiled coverprofile reader (tools/covprofile.go) builds exactly what the Python reader builds.

Every case reads the same file both ways (`native=True` / `native=False`) and compares totals,
block counts, the repeated flag, where each run of a file sits, and the changed blocks; bad
profiles fall back to the Python reader and its messages.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path
from typing import Any

import pytest
from helpers_coverage import snapshot

from itest_mcp.tools import covnative
from itest_mcp.tools.covgo import read_go_profile
from itest_mcp.tools.covmodel import CoverageData, query_files
from itest_mcp.tools.covspans import Ranges
from itest_mcp.tools.errors import CoverageError

pytestmark = pytest.mark.skipif(shutil.which("go") is None, reason="go is not installed")

FIX = Path(__file__).resolve().parent / "fixtures" / "coverage"


def queried(data: CoverageData, ranges: Ranges) -> list[Any]:
    """Every file queried over `ranges` (reads the blocks back from the profile through the sections)."""
    names = sorted(data.files)
    return list(zip(names, query_files([(data.files[n], ranges) for n in names]), strict=True))


def read_both(path: Path, wanted: dict[str, Ranges] | None = None, keys: dict[str, Ranges] | None = None) -> Any:
    want = wanted.get if wanted is not None else None
    native = read_go_profile(path, want=want, keys=keys if keys is not None else wanted, native=True)
    python = read_go_profile(path, want=want, native=False)
    return native, python


def gen_profile(path: Path, rng: random.Random, *, mode: str = "count", crlf: bool = False) -> dict[str, Ranges]:
    """Several concatenated profiles: files split across them, runs repeated back to back, blank lines."""
    names = [f"example.com/m/pkg{i % 3}/f{i}.go" for i in range(12)] + ["C:/work/m/win.go", "/home/ci/m/abs.go"]
    bodies = {}
    for name in names:
        line, body = 1, []
        for _ in range(rng.randint(1, 40)):
            end = line + rng.randint(0, 5)
            body.append(f"{line}.{rng.randint(1, 30)},{end}.{rng.randint(1, 30)} {rng.randint(1, 6)}")
            line = end + rng.randint(0, 3)
        bodies[name] = body
    out = []
    for _part in range(3):
        out.append(f"mode: {mode}")
        for name in rng.sample(names, k=rng.randint(4, len(names))):
            body = bodies[name]
            chosen = body if rng.random() < 0.5 else rng.sample(body, k=rng.randint(1, len(body)))
            copies = 2 if rng.random() < 0.15 else 1  # a section repeated back to back
            for _ in range(copies):
                for block in chosen:
                    out.append(f"{name}:{block} {rng.choice([0, 0, 1, 3])}")
            if rng.random() < 0.1:
                out.append("")
    sep = "\r\n" if crlf else "\n"
    path.write_bytes((sep.join(out) + sep).encode())
    return {
        name.rsplit("/m/", 1)[1]: [(lo, lo + rng.randint(0, 6)) for lo in sorted(rng.sample(range(1, 80), 3))]
        for name in rng.sample(names, k=6)
    }


@pytest.mark.parametrize("seed", range(8))
def test_generated_profiles_read_the_same_both_ways(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    path = tmp_path / "c.out"
    wanted = gen_profile(path, rng, mode=("set", "count", "atomic")[seed % 3], crlf=seed == 5)

    def want(name: str) -> Ranges | None:
        # As load_coverage's matcher: the profile name ends with the repo path.
        return next((r for rel, r in wanted.items() if name.endswith("/" + rel)), None)

    native = read_go_profile(path, want=want, keys=wanted, native=True)
    python = read_go_profile(path, want=want, native=False)
    assert snapshot(native) == snapshot(python)
    assert any(fd.repeated for fd in python.files.values())
    assert any(fd.changed is not None and fd.changed.blocks for fd in python.files.values())
    assert queried(native, [(1, 30), (40, 200)]) == queried(python, [(1, 30), (40, 200)])


def test_merged_fixture_reads_the_same(tmp_path: Path) -> None:
    native, python = read_both(FIX / "merged.out")
    assert snapshot(native) == snapshot(python) and python.files


def test_when_want_disagrees_with_the_keys_the_blocks_are_joined_in_python(tmp_path: Path) -> None:
    path = tmp_path / "c.out"
    wanted = gen_profile(path, random.Random(42))
    shifted = {k: [(lo + 1, hi + 1) for lo, hi in r] for k, r in wanted.items()}

    def want(name: str) -> Ranges | None:
        return next((r for rel, r in wanted.items() if name.endswith("/" + rel)), None)

    native = read_go_profile(path, want=want, keys=shifted, native=True)
    python = read_go_profile(path, want=want, native=False)
    assert snapshot(native) == snapshot(python)
    no_keys = read_go_profile(path, want=want, keys=None, native=True)
    assert snapshot(no_keys) == snapshot(python)


def test_a_big_profile_takes_the_helper_by_default(tmp_path: Path) -> None:
    path = tmp_path / "big.out"
    lines = ["mode: set"]
    for i in range(covnative.NATIVE_MIN_BYTES // 40 + 1):
        lines.append(f"example.com/m/f{i % 50}.go:{i + 1}.1,{i + 2}.1 1 {i % 2}")
    path.write_text("\n".join(lines) + "\n")
    assert path.stat().st_size >= covnative.NATIVE_MIN_BYTES
    auto = read_go_profile(path)
    assert covnative.helper_path() is not None
    python = read_go_profile(path, native=False)
    assert snapshot(auto) == snapshot(python)
    assert sum(fd.go_totals[0] for fd in auto.files.values()) == len(lines) - 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("example.com/m/a.go:1.1,2.1 1 1\n", "block line before any 'mode:' line"),
        ("mode: set\nexample.com/m/a.go:1.1,2.1 1 1\nmode: count\n", "mixed modes"),
        ("mode: set\nexample.com/m/a.go:1.1,2.1 1\n", "not a coverprofile line"),
        ("mode: sideways\n", "unknown mode 'sideways'"),
        ("", "has no 'mode:' line"),
    ],
)
def test_bad_profiles_fall_back_to_the_python_messages(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.out"
    path.write_text(text)
    with pytest.raises(CoverageError) as native:
        read_go_profile(path, native=True)
    with pytest.raises(CoverageError) as python:
        read_go_profile(path, native=False)
    assert message in str(native.value)
    assert str(native.value) == str(python.value)


def test_without_go_the_python_reader_reads_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "c.out"
    gen_profile(path, random.Random(3))
    monkeypatch.setenv("PATH", str(tmp_path))  # no go here
    covnative.clear_built()
    try:
        assert covnative.helper_path() is None
        assert snapshot(read_go_profile(path, native=True)) == snapshot(read_go_profile(path, native=False))
    finally:
        monkeypatch.undo()
        covnative.clear_built()


def test_the_helper_lives_in_a_private_cache_folder() -> None:
    binary = covnative.helper_path()
    assert binary is not None and binary.is_file()
    assert binary.parent.stat().st_mode & 0o077 == 0
    assert covnative.helper_path() == binary  # built once


def test_memory_does_not_grow_with_blocks(tmp_path: Path) -> None:
    import tracemalloc

    def peak(blocks_per_file: int) -> int:
        path = tmp_path / f"p{blocks_per_file}.out"
        lines = ["mode: set"]
        for f in range(300):
            lines += [f"example.com/m/f{f}.go:{b + 1}.1,{b + 1}.9 2 {b % 2}" for b in range(blocks_per_file)]
        path.write_text("\n".join(lines) + "\n")
        wanted = {f"f{f}.go": [(5, 9)] for f in range(300)}
        tracemalloc.start()
        read_go_profile(path, want=lambda n: wanted.get(n.rsplit("/", 1)[1]), keys=wanted, native=True)
        used = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return used

    small, big = peak(40), peak(400)  # 12k and 120k blocks over the same 300 files
    assert big < small * 1.3 + 100_000, (small, big)
