"""What a Makefile target runs, when its recipe is nothing but `go test` commands.

The workflow folds a command phase (`make test-integration`) into a Go phase that runs the same tests:
running both runs those tests twice and counts them twice, and the command phase reports less (plain
`go test` prints no per-test lines, and a command cannot be rerun test by test). Only a recipe this
reader understands completely is folded: a target with prerequisites, make variables, continued lines,
other commands or go test flags it does not know is left alone.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from .phases import Phase, Runner, listed_names

MAKEFILE_NAMES = ("GNUmakefile", "makefile", "Makefile")
"""The names make itself tries, in its order."""
HARMLESS_FLAGS = {"-v", "-json", "-failfast", "-count", "-timeout", "-p", "-parallel", "-cover", "-covermode"}
"""Flags that change how the tests run or report, not which tests run."""
_VALUE_FLAGS = {"-tags", "-run", "-count", "-timeout", "-p", "-parallel", "-covermode"}


@dataclass(frozen=True, slots=True)
class GoTestCall:
    """One `go test` command of a recipe: its packages, build tags, -run pattern and -race."""

    packages: tuple[str, ...]
    tags: frozenset[str]
    run: str | None
    race: bool


def find_makefile(root: Path) -> Path | None:
    return next((root / name for name in MAKEFILE_NAMES if (root / name).is_file()), None)


def go_test_calls(makefile: Path, target: str) -> list[GoTestCall] | None:
    """The `go test` commands that make up `target`'s recipe, or None when it is anything more."""
    try:
        lines = makefile.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    header = re.compile(rf"^{re.escape(target)}\s*:(?![:=])(.*)$")
    start = next((i for i, line in enumerate(lines) if header.match(line)), None)
    if start is None:
        return None
    match = header.match(lines[start])
    assert match is not None
    if match.group(1).split("#", 1)[0].strip():
        return None  # prerequisites run first: the target does more than its recipe
    calls: list[GoTestCall] = []
    for line in lines[start + 1 :]:
        if not line.startswith("\t"):
            if line.strip() and not line.lstrip().startswith("#"):
                break
            continue
        call = _go_test(line.strip().lstrip("@-+").strip())
        if call is None:
            return None
        calls.append(call)
    return calls or None


def _go_test(command: str) -> GoTestCall | None:
    if command.endswith("\\") or "$" in command.replace("$$", "") or "`" in command:
        return None  # continued lines, make variables, command substitution
    try:
        lexer = shlex.shlex(command.replace("$$", "$"), posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        words = list(lexer)
    except ValueError:
        return None
    if any(word and set(word) <= set("();<>|&") for word in words):
        return None  # several commands, pipes or redirections (quoted ones, as in -run '^(A|B)$', are words)
    if words[:2] != ["go", "test"]:
        return None
    packages: list[str] = []
    values: dict[str, str] = {}
    race = False
    rest = iter(words[2:])
    for word in rest:
        if not word.startswith("-"):
            packages.append(word.removeprefix("./").rstrip("/") or ".")
            continue
        flag, eq, value = word.partition("=")
        flag = "-" + flag.lstrip("-")
        if flag == "-race":
            race = True
        elif flag in _VALUE_FLAGS:
            values[flag] = value if eq else next(rest, "")
        elif flag not in HARMLESS_FLAGS:
            return None  # -short, -skip, -args ...: which tests run is no longer plain
    tags = frozenset(t for t in re.split(r"[ ,]", values.get("-tags", "")) if t)
    return GoTestCall(tuple(packages or ["."]), tags, values.get("-run") or None, race)


def run_names(pattern: str | None) -> frozenset[str] | None:
    """The test names a -run pattern that only lists names (`^(A|B)$`, `^A$`) selects; None for anything else."""
    names = listed_names(pattern) if pattern is not None else None
    return frozenset(names) if names is not None else None


def go_phase_runs_all(phase: Phase, calls: list[GoTestCall]) -> bool:
    """Whether the Go `phase` runs every test of every call, built the same way (race only adds checks)."""
    if phase.runner is not Runner.GO or not phase.available or phase.skip is not None or phase.args:
        return False
    packages = {p.removeprefix("./").rstrip("/") or "." for p in phase.packages}
    selected = run_names(phase.run)
    for call in calls:
        if not set(call.packages) <= packages or call.tags != frozenset(phase.tags) or (call.race and not phase.race):
            return False
        if phase.run is not None:
            wanted = run_names(call.run)
            if selected is None or wanted is None or not wanted <= selected:
                return False
    return True
