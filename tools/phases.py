"""The phase model: what a phase is, where it comes from, and the exact argv it runs.

Only phases from config or discovery ever run. A caller may narrow a phase
(`ArgvOptions`: a test name or regex, race, count, coverage) but never supply a
command; every caller value goes in as a value (`-run=<v>`, `-k <v>`), never as
a flag of its own.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from pydantic import Field, field_validator, model_validator

from .config import RawConfig, load_raw_config, validate_section
from .errors import ConfigError, InputError, UnknownPhaseError
from .models import Model
from .process import which
from .repo import Project, ensure_not_option

DEFAULT_TIMEOUT_S = 1800.0
MAX_TIMEOUT_S = 24 * 3600.0
"""The longest a phase may run, from its config or a caller's timeout (`run --timeout`)."""
_MAX_TIMEOUT_TEXT = f"{MAX_TIMEOUT_S:.0f} s (24 h)"

PHASE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")


class Runner(StrEnum):
    GO = "go"
    PYTEST = "pytest"
    COMMAND = "command"


RUNNER_KEYS: dict[Runner, set[str]] = {
    Runner.GO: {"packages", "run", "skip", "tags", "race", "count", "args"},
    Runner.PYTEST: {"paths", "markers", "keyword", "args"},
    Runner.COMMAND: {"argv", "junit", "go_json"},
}
COMMON_KEYS = {"description", "order", "runner", "timeout", "env", "triggers"}


def _parse_duration(value: Any) -> float:
    """Seconds from a number or a Go-style duration string ("90s", "20m", "1h30m")."""
    if isinstance(value, bool):
        raise ValueError("a timeout is a number of seconds or a duration like '20m'")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        parts = re.fullmatch(r"\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*(?:(\d+(?:\.\d+)?)s)?\s*", value)
        if not value.strip() or parts is None:
            raise ValueError(f"timeout {value!r} is not a duration; write seconds (600) or '10m', '1h30m', '90s'")
        hours, minutes, secs = (float(p) if p else 0.0 for p in parts.groups())
        seconds = hours * 3600 + minutes * 60 + secs
    else:
        raise ValueError("a timeout is a number of seconds or a duration like '20m'")
    if not math.isfinite(seconds):
        raise ValueError(f"timeout must be a finite number of seconds, at most {_MAX_TIMEOUT_TEXT}")
    if seconds <= 0:
        raise ValueError(f"timeout must be positive, got {value!r}")
    if seconds > MAX_TIMEOUT_S:
        raise ValueError(f"timeout is longer than the limit of {_MAX_TIMEOUT_TEXT}; give at most '24h'")
    return seconds


class PhaseConfig(Model):
    """One `[phases.<name>]` table as written in the config (flat: runner fields beside common ones)."""

    description: str = ""
    order: int = 100
    runner: Runner
    timeout: float = DEFAULT_TIMEOUT_S
    env: dict[str, str] = Field(default_factory=dict)
    triggers: list[str] = Field(default_factory=list)
    # go
    packages: list[str] = Field(default_factory=lambda: ["./..."])
    run: str | None = None
    skip: str | None = None
    tags: list[str] = Field(default_factory=list)
    race: bool = True
    count: int = Field(default=1, ge=1, le=1000)
    args: list[str] = Field(default_factory=list)
    # pytest
    paths: list[str] = Field(default_factory=list)
    markers: str | None = None
    keyword: str | None = None
    # command
    argv: list[str] = Field(default_factory=list)
    junit: str | None = None
    go_json: bool = False

    @field_validator("timeout", mode="before")
    @classmethod
    def _timeout(cls, value: Any) -> float:
        return _parse_duration(value)

    @classmethod
    def known_keys_hint(cls) -> str:
        per_runner = "; ".join(f"{r.value}: {', '.join(sorted(k))}" for r, k in RUNNER_KEYS.items())
        return f"{', '.join(sorted(COMMON_KEYS))}; by runner — {per_runner}"


class Phase(Model):
    """A runnable phase, from config or discovery."""

    name: str
    description: str = ""
    order: int = 100
    runner: Runner
    timeout_s: float = DEFAULT_TIMEOUT_S
    env: dict[str, str] = Field(default_factory=dict)
    triggers: list[str] = Field(default_factory=list)
    source: str = "config"
    """"config" or "discovery:<rule>" (go-integration, go-all, magefile, makefile, pytest)."""
    note: str | None = None
    project_root: str | None = Field(default=None, exclude=True)
    available: bool = True
    """False when the program it needs is not on PATH (the note says which)."""
    # go
    packages: list[str] = Field(default_factory=list)
    run: str | None = None
    skip: str | None = None
    tags: list[str] = Field(default_factory=list)
    race: bool = True
    count: int = 1
    args: list[str] = Field(default_factory=list)
    test_files: list[str] = Field(default_factory=list)
    """Test files the phase runs (discovery knows them; assess uses them)."""
    # pytest
    paths: list[str] = Field(default_factory=list)
    markers: str | None = None
    keyword: str | None = None
    # command
    argv: list[str] = Field(default_factory=list)
    junit: str | None = None
    go_json: bool = False

    @model_validator(mode="after")
    def _runner_fields(self) -> Phase:
        if self.runner is Runner.COMMAND and not self.argv:
            raise ValueError('a command phase needs \'argv\', a list like ["make", "test-integration"]')
        return self


class ArgvOptions(Model):
    """How a caller may narrow a phase: values only, never commands or flags."""

    test: str | None = None
    race: bool | None = None
    count: int | None = Field(default=None, ge=1, le=1000)
    coverage_profile: str | None = None
    """Go: path for -coverprofile (the run folder's); pytest: path for the coverage XML."""
    coverpkg: str | None = None
    junit_xml: str | None = None
    """pytest: where --junitxml writes."""
    add_json: bool = True
    """go: add -json (the engine always does; list_phases shows it)."""


def build_argv(phase: Phase, options: ArgvOptions | None = None, *, others: Sequence[Phase] = ()) -> list[str]:
    """The exact argv the phase runs with `options` applied.

    A test filter narrows the phase's own selection and never widens it: a test outside the phase's
    `run` pattern is refused (naming a phase of `others` that runs it), so history never files a test
    under a phase that does not contain it.
    """
    opts = options or ArgvOptions()
    if opts.test is not None:
        ensure_not_option("test", opts.test)
        if not opts.test.strip():
            raise InputError("test filter is empty; give a test name or a regular expression")
        if "\0" in opts.test:
            raise InputError(f"test filter {opts.test!r} contains a NUL character, which a command line cannot carry")
    if phase.runner is Runner.GO:
        argv = ["go", "test"]
        if opts.add_json:
            argv.append("-json")
        race = phase.race if opts.race is None else opts.race
        if race:
            argv.append("-race")
        if phase.tags:
            argv.append("-tags=" + ",".join(phase.tags))
        count = opts.count if opts.count is not None else phase.count
        argv.append(f"-count={count}")
        run = _narrowed_run(phase, opts.test, others) if opts.test is not None else phase.run
        if run:
            argv.append(f"-run={run}")
        if phase.skip:
            argv.append(f"-skip={phase.skip}")
        if opts.coverage_profile:
            argv.append(f"-coverprofile={opts.coverage_profile}")
            argv.append("-covermode=atomic" if race else "-covermode=set")
            if opts.coverpkg:
                argv.append(f"-coverpkg={opts.coverpkg}")
        argv.append(f"-timeout={int(phase.timeout_s)}s")
        argv.extend(phase.args)
        argv.extend(phase.packages or ["./..."])
        return argv
    if phase.runner is Runner.PYTEST:
        argv = [python_for(phase), "-m", "pytest"]
        if phase.markers:
            argv += ["-m", phase.markers]
        keyword = opts.test if opts.test is not None else phase.keyword
        if opts.test is not None and phase.keyword:
            # Both must hold: the caller's expression narrows the phase's own selection.
            keyword = f"({phase.keyword}) and ({opts.test})"
        if keyword:
            argv += ["-k", keyword]
        if opts.junit_xml:
            argv.append(f"--junitxml={opts.junit_xml}")
        argv.extend(phase.args)
        # `--` ends options, so a path can never be read as one.
        if phase.paths:
            argv += ["--", *phase.paths]
        return argv
    return list(phase.argv)


def python_for(phase: Phase) -> str:
    """The interpreter for a pytest phase: the project's `.venv` when it has one, else ours."""
    if phase.project_root:
        venv = Path(phase.project_root) / ".venv" / "bin" / "python"
        if venv.is_file():
            return str(venv)
    return sys.executable


def _go_test_regex(test: str) -> str:
    """A plain test name runs exactly that test (anchored); anything with regex syntax is used as given."""
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(/[A-Za-z0-9_./-]*)?", test):
        top, _, sub = test.partition("/")
        return f"^{top}$" + (f"/^{re.escape(sub)}$" if sub else "")
    try:
        re.compile(test)
    except re.error as exc:
        raise InputError(f"test filter {test!r} is not a valid regular expression: {exc}") from exc
    return test


def _narrowed_run(phase: Phase, test: str, others: Sequence[Phase]) -> str:
    """The -run value for `test` inside the phase's own `run` selection (refused when it is outside)."""
    run = _go_test_regex(test)
    if not phase.run:
        return run
    try:
        selects = re.compile(top_level_regex(phase.run))
    except re.error:
        return run  # RE2-only syntax Python cannot read: the filter cannot be checked, so go gets it as given
    top, sub = _split_top_level(test)
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", top):
        if selects.search(top):
            return run
        raise _outside(phase, test, others, [top])
    listed = listed_names(top_level_regex(phase.run))
    if listed is None:
        raise InputError(
            f"phase {phase.name!r} selects its tests with -run={phase.run}, and a regular expression cannot be "
            f"checked against that; give one test name (TestX or TestX/sub){_containing_hint(test, others, phase)}"
        )
    try:
        wanted = re.compile(top)
    except re.error as exc:
        raise InputError(f"test filter {test!r} is not a valid regular expression: {exc}") from exc
    chosen = [name for name in listed if wanted.search(name)]
    if not chosen:
        raise _outside(phase, test, others, [])
    return "^(" + "|".join(chosen) + ")$" + (f"/{sub}" if sub else "")


def _outside(phase: Phase, test: str, others: Sequence[Phase], names: list[str]) -> InputError:
    return InputError(
        f"test {test!r} is not part of phase {phase.name!r}, which runs only tests matching -run={phase.run}"
        f"{_containing_hint(test, others, phase, names)}"
    )


def _containing_hint(test: str, others: Sequence[Phase], phase: Phase, names: list[str] | None = None) -> str:
    """Which other phases of the same runner select the test ("; phase 'all' runs it"), if any."""
    top = names[0] if names else _split_top_level(test)[0]
    holding: list[str] = []
    for other in others:
        if other.name == phase.name or other.runner is not phase.runner or not other.available:
            continue
        try:
            if other.run is None or re.search(top_level_regex(other.run), top):
                holding.append(repr(other.name))
        except re.error:
            continue
    if not holding:
        return ""
    if len(holding) == 1:
        return f"; phase {holding[0]} runs it"
    return f"; phases {', '.join(holding[:4])} run it"


def listed_names(regex: str) -> list[str] | None:
    """The names of a pattern that only lists names (`^(A|B)$`, `^A$`), else None (`^A` also selects `AB`)."""
    match = re.fullmatch(r"\^\(?([A-Za-z0-9_|]+)\)?\$", regex)
    return match.group(1).split("|") if match else None


def _split_top_level(regex: str) -> tuple[str, str]:
    """`TestX/sub` -> ("TestX", "sub"): the part for top-level tests and the rest."""
    top = top_level_regex(regex)
    return top, regex[len(top) + 1 :]


def top_level_regex(regex: str) -> str:
    """The part of a -run regex that applies to top-level tests (before the first unbracketed '/')."""
    depth = 0
    for i, ch in enumerate(regex):
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif ch == "/" and depth == 0:
            return regex[:i]
    return regex


class PhaseSet(Model):
    """All phases of a project in run order, and where the config came from."""

    phases: list[Phase]
    config_file: str = ""
    discovered: bool = False

    def names(self) -> list[str]:
        return [p.name for p in self.phases]

    def get(self, name: str) -> Phase:
        for phase in self.phases:
            if phase.name == name:
                return phase
        raise UnknownPhaseError(name, self.names())


def phases_from_config(raw: RawConfig) -> list[Phase]:
    """Validate the `[phases]` table into phases; errors name file, key and line."""
    table = raw.section("phases")
    phases: list[Phase] = []
    for name, body in table.items():
        loc = ("phases", name)
        if not PHASE_NAME.match(name):
            raise raw.error(f"phase name {name!r} must be letters, digits, '-', '_', '.', ':' (max 64)", loc)
        if not isinstance(body, dict):
            raise raw.error(f"phase {name!r} must be a table", loc)
        if "runner" not in body:
            raise raw.error(f'phase {name!r} has no \'runner\'; set runner = "go", "pytest" or "command"', loc)
        config = validate_section(raw, loc, body, PhaseConfig)
        misplaced = (set(body) - COMMON_KEYS) - RUNNER_KEYS[config.runner]
        if misplaced:
            key = sorted(misplaced)[0]
            owner = next((r.value for r, keys in RUNNER_KEYS.items() if key in keys), "?")
            raise raw.error(
                f"key {key!r} belongs to runner {owner!r}, but phase {name!r} uses runner {config.runner.value!r}",
                (*loc, key),
            )
        if config.runner is Runner.COMMAND and not config.argv:
            raise raw.error(f'command phase {name!r} needs \'argv\', e.g. ["make", "test-integration"]', loc)
        for key in ("packages", "paths"):
            for value in getattr(config, key):
                if value.startswith("-"):
                    raise raw.error(f"{key} entry {value!r} starts with '-'; list packages or paths only", (*loc, key))
        _check_command_line(raw, loc, config)
        if config.junit is not None:
            _check_junit_glob(raw, loc, config.junit)
        fields = config.model_dump(exclude={"timeout"})
        if config.runner is not Runner.GO:
            fields["packages"] = []
        phase = Phase(name=name, timeout_s=config.timeout, source="config", **fields)
        phases.append(_mark_availability(phase))
    return phases


_ARGV_LISTS = ("argv", "args", "packages", "paths", "tags")
_ARGV_VALUES = ("run", "skip", "markers", "keyword")


def _check_command_line(raw: RawConfig, loc: tuple[str, ...], config: PhaseConfig) -> None:
    """What goes into the child's argv and environment must be passable to exec: caught here with file:line,
    not as a spawn error after the run has started."""
    nul = "contains a NUL character, which a command line or environment cannot carry; remove it"
    for name, value in config.env.items():
        if not name or "=" in name or "\0" in name:
            raise raw.error(
                f"env name {name!r} is not a usable variable name (it must be non-empty, without '=' or NUL); "
                f'write env = {{ NAME = "value" }}',
                (*loc, "env"),
            )
        if "\0" in value:
            raise raw.error(f"env {name} value {value!r} {nul}", (*loc, "env", name))
    for key in _ARGV_LISTS:
        for i, item in enumerate(getattr(config, key)):
            if "\0" in item:
                raise raw.error(f"{key}[{i}] {item!r} {nul}", (*loc, key))
    for key in _ARGV_VALUES:
        value = getattr(config, key)
        if value is not None and "\0" in value:
            raise raw.error(f"{key} {value!r} {nul}", (*loc, key))
    if config.argv and not config.argv[0].strip():
        raise raw.error(
            f'argv[0] {config.argv[0]!r} is empty; it names the program to run, e.g. argv = ["make", "test"]',
            (*loc, "argv"),
        )


def _check_junit_glob(raw: RawConfig, loc: tuple[str, ...], pattern: str) -> None:
    """A `junit` glob names files inside the project: relative, no '..' out of it (the run reads what it matches)."""
    problem = None
    if not pattern.strip():
        problem = "is empty"
    elif "\0" in pattern:
        problem = "contains a NUL character"
    elif PurePosixPath(pattern).is_absolute() or PureWindowsPath(pattern).is_absolute():
        problem = "is an absolute path"
    elif ".." in re.split(r"[/\\]", pattern):
        problem = "uses '..', which can leave the project"
    if problem:
        raise raw.error(
            f"junit glob {pattern!r} {problem}; give a glob relative to the project root, "
            f"e.g. 'reports/*.xml' or 'build/test-results/**/*.xml'",
            (*loc, "junit"),
        )


def _mark_availability(phase: Phase) -> Phase:
    program = {Runner.GO: "go", Runner.PYTEST: None, Runner.COMMAND: phase.argv[0] if phase.argv else None}[
        phase.runner
    ]
    if program and "/" not in program and which(program) is None:
        note = f"{program!r} is not on PATH, so this phase cannot run here"
        return phase.model_copy(update={"available": False, "note": (phase.note + "; " if phase.note else "") + note})
    return phase


def load_phases(project: Project) -> PhaseSet:
    """Configured phases, plus discovered ones when nothing is configured (or `discover = true`)."""
    from .discovery import discover_phases

    raw = load_raw_config(project)
    configured = phases_from_config(raw)
    discover = raw.data.get("discover")
    use_discovery = discover if isinstance(discover, bool) else not configured
    phases = list(configured)
    if use_discovery:
        taken = {p.name for p in configured}
        phases += [_mark_availability(p) for p in discover_phases(project.root) if p.name not in taken]
    seen: set[str] = set()
    for phase in phases:
        if phase.name in seen:
            raise ConfigError(raw.file or "(discovery)", f"duplicate phase name {phase.name!r}")
        seen.add(phase.name)
    phases = [p.model_copy(update={"project_root": str(project.root)}) for p in phases]
    phases.sort(key=lambda p: (p.order, p.name))
    return PhaseSet(phases=phases, config_file=raw.file, discovered=use_discovery)


class PhaseInfo(Model):
    """A phase as `list_phases` shows it: what it runs, why it exists, when it matters."""

    name: str
    description: str
    runner: Runner
    argv: list[str]
    source: str
    triggers: list[str]
    order: int
    timeout_s: float
    available: bool
    note: str | None = None
    env: dict[str, str] = Field(default_factory=dict)


class PhaseListing(Model):
    """Every phase of the project in run order."""

    project_root: str
    config_file: str | None
    discovered: bool
    phases: list[PhaseInfo]


def list_phases(project: Project) -> PhaseListing:
    """Every configured or discovered phase with the exact argv it will run."""
    phase_set = load_phases(project)
    return PhaseListing(
        project_root=str(project.root),
        config_file=phase_set.config_file or None,
        discovered=phase_set.discovered,
        phases=[
            PhaseInfo(
                name=p.name,
                description=p.description,
                runner=p.runner,
                argv=build_argv(p),
                source=p.source,
                triggers=p.triggers,
                order=p.order,
                timeout_s=p.timeout_s,
                available=p.available,
                note=p.note,
                env=p.env,
            )
            for p in phase_set.phases
        ],
    )
