"""Discover phases in a repository that has no config: the part that makes the tool work on day one.

Rules (each phase says which one made it, in `source`):
- go-integration: every `_test.go` under `test/integration/`, or anywhere with an
  `integration` build constraint, becomes a phase named after its file
  (`network_edge_cases_test.go` → `network-edge-cases`) running exactly its
  top-level tests with the tags its constraint needs. A file that needs another
  tag too (`integration && performance`) is its own phase with those tags and is
  left out of `all`, never mixed in silently.
- go-all: one `all` phase over every integration package with `-tags=integration`.
- magefile: a magefile or `.mage.yaml` → `magex test:race`.
- makefile: targets named `test-integration*` / `integration*` → `make <target>`.
- pytest: `tests/integration/` → a pytest phase; else tests marked `integration` → `-m integration`.

Discovery only reads files (no `go list`), so it stays fast on big trees.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

from .make_recipes import MAKEFILE_NAMES
from .phases import Phase, Runner

SKIP_DIRS = {".git", ".hg", ".svn", "vendor", "node_modules", ".itest", "testdata", "__pycache__", ".venv", "venv"}
BUILD_LINE = re.compile(r"^//go:build\s+(.+)$")
PLUS_BUILD_LINE = re.compile(r"^//\s*\+build\s+(.+)$")
TEST_FUNC = re.compile(r"^func\s+(Test[A-Z0-9_]\w*|Test)\s*\(\s*\w+\s+\*testing\.T\s*\)", re.MULTILINE)
MAKE_TARGET = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_.-]*)\s*:(?!=)", re.MULTILINE)
PYTEST_INTEGRATION_MARK = re.compile(r"pytest\.mark\.integration\b")
GO_PLATFORM_WORDS = {
    "linux", "darwin", "windows", "freebsd", "netbsd", "openbsd", "android", "ios", "js", "wasip1", "plan9",
    "solaris", "illumos", "aix", "dragonfly", "amd64", "arm64", "386", "arm", "wasm", "riscv64", "ppc64le",
    "s390x", "mips", "mipsle", "mips64", "mips64le", "loong64", "unix", "cgo", "gc", "gccgo", "ignore",
}  # fmt: skip


def _walk(root: Path) -> Iterator[tuple[str, list[str]]]:
    """Yield (folder, file names) with vendored, hidden and state folders pruned."""
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS and not d.startswith(".")]
        yield folder, files


def constraint_tags(expression: str) -> tuple[set[str], set[str]]:
    """(required tags, negated tags) named in a build constraint, platform words and goX.Y ignored."""
    negated = set(re.findall(r"!\s*([A-Za-z0-9_.]+)", expression))
    words = set(re.findall(r"[A-Za-z0-9_.]+", expression))
    tags = {w for w in words if w not in GO_PLATFORM_WORDS and not re.fullmatch(r"go1\.\d+", w)}
    return tags - negated, negated & tags


def read_go_test_file(path: Path) -> tuple[str | None, list[str]]:
    """The build constraint expression (or None) and the top-level Test functions of a Go test file."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None, []
    constraint: str | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("package "):
            break
        match = BUILD_LINE.match(stripped)
        if match:
            constraint = match.group(1).strip()
            break
        plus = PLUS_BUILD_LINE.match(stripped)
        if plus and constraint is None:
            # Old-style `// +build a,b c`: commas are AND, spaces OR; tags are what matters here.
            constraint = plus.group(1).replace(",", " && ").strip()
    return constraint, TEST_FUNC.findall(text)


def phase_name_for(file_name: str) -> str:
    """`network_edge_cases_test.go` → `network-edge-cases`."""
    stem = file_name.removesuffix(".go").removesuffix("_test")
    return re.sub(r"[^A-Za-z0-9]+", "-", stem).strip("-").lower() or "tests"


def discover_phases(root: Path) -> list[Phase]:
    """Every phase the discovery rules find under `root`."""
    go_files: list[tuple[str, str, list[str], set[str]]] = []  # (rel dir, file, tests, tags)
    makefiles: list[Path] = []
    has_magefile = False
    pytest_integration_dirs: list[str] = []
    pytest_marked = False
    for folder, files in _walk(root):
        rel_dir = Path(folder).relative_to(root).as_posix()
        for name in files:
            if name.endswith("_test.go"):
                found = _go_integration_file(root, rel_dir, name)
                if found:
                    go_files.append(found)
            elif rel_dir == "." and name in MAKEFILE_NAMES:
                makefiles.append(Path(folder) / name)
            elif rel_dir == "." and name in ("magefile.go", ".mage.yaml", ".mage.yml"):
                has_magefile = True
            elif name.startswith("test_") and name.endswith(".py") and not pytest_marked:
                pytest_marked = _has_integration_mark(Path(folder) / name)
        if rel_dir == "magefiles":
            has_magefile = True
        if rel_dir.endswith("tests/integration") and any(f.endswith(".py") for f in files):
            pytest_integration_dirs.append(rel_dir)
    phases = _go_phases(go_files)
    if has_magefile:
        phases.append(_magex_phase())
    for makefile in makefiles:
        phases += _make_phases(makefile, {p.name for p in phases})
    pytest_phase = _pytest_phase(pytest_integration_dirs, pytest_marked)
    if pytest_phase:
        phases.append(pytest_phase)
    return phases


def _go_integration_file(root: Path, rel_dir: str, name: str) -> tuple[str, str, list[str], set[str]] | None:
    constraint, tests = read_go_test_file(root / rel_dir / name)
    tags, negated = constraint_tags(constraint) if constraint else (set(), set())
    under_integration_dir = rel_dir == "test/integration" or rel_dir.startswith("test/integration/")
    if "integration" in negated:
        return None
    if "integration" not in tags and not under_integration_dir:
        return None
    if not tests:
        return None
    return rel_dir, name, tests, tags


def _go_phases(files: list[tuple[str, str, list[str], set[str]]]) -> list[Phase]:
    phases: list[Phase] = []
    names = [phase_name_for(name) for _, name, _, _ in files]
    all_packages: list[str] = []
    all_files: list[str] = []
    for (rel_dir, name, tests, tags), phase_name in zip(files, names, strict=True):
        package = "./" + rel_dir if rel_dir != "." else "."
        if names.count(phase_name) > 1:
            phase_name = phase_name_for(rel_dir.replace("/", "-") + "-" + name)
        extra = sorted(tags - {"integration"})
        ordered_tags = (["integration"] if "integration" in tags else []) + extra
        rel_file = f"{rel_dir}/{name}" if rel_dir != "." else name
        run = "^(" + "|".join(sorted(tests)) + ")$"
        description = f"{', '.join(sorted(tests))} from {rel_file}"
        if extra:
            description += f" (needs build tags {', '.join(ordered_tags)}; not part of 'all')"
        phases.append(
            Phase(
                name=phase_name,
                description=description,
                order=500 if extra else 100,
                runner=Runner.GO,
                source="discovery:go-integration",
                packages=[package],
                run=run,
                tags=ordered_tags,
                race=True,
                test_files=[rel_file],
                triggers=[rel_file, "go.mod", "go.sum"],
            )
        )
        if not extra and "integration" in tags:
            all_files.append(rel_file)
            if package not in all_packages:
                all_packages.append(package)
        elif not extra and not tags:
            # Under test/integration without a constraint: runs without tags, still part of `all`.
            all_files.append(rel_file)
            if package not in all_packages:
                all_packages.append(package)
    if all_packages and "all" not in {p.name for p in phases}:
        phases.append(
            Phase(
                name="all",
                description=f"every integration test in {', '.join(all_packages)} with -tags=integration",
                order=900,
                runner=Runner.GO,
                source="discovery:go-all",
                packages=all_packages,
                tags=["integration"],
                race=True,
                test_files=all_files,
                triggers=["**/*.go", "go.mod", "go.sum"],
            )
        )
    return phases


def _magex_phase() -> Phase:
    return Phase(
        name="magex-test-race",
        description="the project's mage race tests (magex test:race)",
        order=700,
        runner=Runner.COMMAND,
        source="discovery:magefile",
        argv=["magex", "test:race"],
        go_json=False,
        triggers=["**/*.go", "go.mod", "go.sum"],
    )


def _make_phases(makefile: Path, taken: set[str]) -> list[Phase]:
    try:
        text = makefile.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    phases: list[Phase] = []
    seen: set[str] = set()
    for target in MAKE_TARGET.findall(text):
        if target in seen or not (target.startswith("test-integration") or target.startswith("integration")):
            continue
        seen.add(target)
        name = target if target not in taken else f"make-{target}"
        phases.append(
            Phase(
                name=name,
                description=f"make {target} (from {makefile.name})",
                order=600,
                runner=Runner.COMMAND,
                source="discovery:makefile",
                argv=["make", target],
                triggers=[makefile.name],
            )
        )
    return phases


def _has_integration_mark(path: Path) -> bool:
    try:
        with path.open(encoding="utf-8", errors="replace") as handle:
            return bool(PYTEST_INTEGRATION_MARK.search(handle.read(200_000)))
    except OSError:
        return False


def _pytest_phase(dirs: list[str], marked: bool) -> Phase | None:
    if dirs:
        top = sorted(set(dirs), key=len)
        return Phase(
            name="python-integration",
            description=f"pytest integration suite in {', '.join(top)}",
            order=300,
            runner=Runner.PYTEST,
            source="discovery:pytest",
            paths=top,
            triggers=[f"{d}/**" for d in top] + ["**/*.py"],
        )
    if marked:
        return Phase(
            name="python-integration",
            description="pytest tests marked 'integration' (-m integration)",
            order=300,
            runner=Runner.PYTEST,
            source="discovery:pytest-marker",
            markers="integration",
            triggers=["**/*.py"],
        )
    return None
