"""Parse throughput of a generated 100,000-event `go test -json` stream vs gotestsum (or a bare json.loads loop).

Also shows peak parser memory (tracemalloc) at 25k/50k/100k events with the same
number of tests: it stays flat because output is kept as a bounded tail.
Run: python bench/bench_run_parse.py
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
import tracemalloc
from pathlib import Path

from itest_mcp.tools.gotest import GoTestParser


def generate(path: Path, events: int, tests: int = 2000) -> None:
    per_test = max(4, events // tests)
    with path.open("w", encoding="utf-8") as out:
        written = 0
        i = 0
        while written < events:
            name = f"TestGen{i % tests:05d}"
            out.write(json.dumps({"Action": "run", "Package": "example.com/gen", "Test": name}) + "\n")
            for j in range(per_test - 2):
                text = f"    gen_test.go:{j + 10}: step {j} of {name} ok\n"
                out.write(json.dumps({"Action": "output", "Package": "example.com/gen", "Test": name, "Output": text}))
                out.write("\n")
            action = "fail" if i % 97 == 0 else "pass"
            out.write(json.dumps({"Action": action, "Package": "example.com/gen", "Test": name, "Elapsed": 0.01}))
            out.write("\n")
            written += per_test
            i += 1


def ours(path: Path) -> float:
    start = time.perf_counter()
    parser = GoTestParser(module_path="example.com/gen", root="/x")
    with path.open("rb") as handle:
        for line in handle:
            parser.feed(line)
    parser.report()
    return time.perf_counter() - start


def bare(path: Path) -> float:
    start = time.perf_counter()
    with path.open("rb") as handle:
        for line in handle:
            json.loads(line)
    return time.perf_counter() - start


GOTESTSUM = "gotest.tools/gotestsum@v1.13.0"
"""Installed with `go install` from the Go module proxy when not on PATH (the Debian package is not reachable here)."""


def gotestsum_exe() -> str | None:
    """gotestsum on PATH, else the one `go install` puts into bench/out/bin (once)."""
    exe = shutil.which("gotestsum")
    if exe is not None:
        return exe
    gobin = Path(__file__).resolve().parent / "out" / "bin"
    local = gobin / "gotestsum"
    if not local.is_file() and shutil.which("go") is not None:
        env = {**os.environ, "GOBIN": str(gobin), "GOFLAGS": "", "GOTOOLCHAIN": "local"}
        subprocess.run(["go", "install", GOTESTSUM], env=env, capture_output=True, check=False, timeout=600)
    return str(local) if local.is_file() else None


def gotestsum(path: Path) -> float | None:
    exe = gotestsum_exe()
    if exe is None:
        return None
    start = time.perf_counter()
    subprocess.run(
        [exe, "--format", "dots", "--jsonfile", "/dev/null", "--raw-command", "--", "cat", str(path)],
        capture_output=True,
        check=False,
    )
    return time.perf_counter() - start


def peak_memory(path: Path) -> int:
    tracemalloc.start()
    parser = GoTestParser()
    with path.open("rb") as handle:
        for line in handle:
            parser.feed(line)
    parser.report()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "events.json"
        generate(path, 100_000)
        ours_s = min(ours(path) for _ in range(3))
        anchor = gotestsum(path)
        if anchor is not None:
            anchor = min(anchor, *(gotestsum(path) or anchor for _ in range(2)))
            print(
                f"parse 100k events: ours {ours_s:.3f} s, gotestsum {anchor:.3f} s; "
                f"throughput ratio ours/gotestsum = {anchor / ours_s:.2f} (bar >= 0.33)"
            )
        else:
            base = min(bare(path) for _ in range(3))
            print(f"gotestsum unavailable (not on PATH; `go install {GOTESTSUM}` failed); anchor: bare json.loads loop")
            print(
                f"parse 100k events: ours {ours_s:.3f} s, bare json.loads {base:.3f} s; "
                f"throughput ratio ours/bare = {base / ours_s:.2f}"
            )
        for events in (25_000, 50_000, 100_000):
            generate(path, events, tests=500)
            print(f"peak parser memory at {events:>7} events (500 tests): {peak_memory(path) / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
