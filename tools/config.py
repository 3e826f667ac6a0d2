"""Load `itest.toml` (or `[tool.itest]` in `pyproject.toml`) and report errors with file, key and line.

The top level knows every section; each capability validates its own section
with its own pydantic model through `validate_section`, so an error anywhere
names the file, the dotted key and the line it is on.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from .errors import ConfigError
from .repo import Project

CONFIG_FILE = "itest.toml"
PYPROJECT_FILE = "pyproject.toml"

TOP_LEVEL_SECTIONS = {
    "discover": "bool: also discover phases when phases are configured (default: only without configured phases)",
    "phases": "table of phases by name",
    "assess": "change classification rules (assess_changes)",
    "github": "GitHub API settings (validate_github_api, review_ci_failures)",
    "faults": "fault-injection profiles (run_phase with faults)",
}
"""Only sections something reads: a section nobody validates would swallow typos silently."""

M = TypeVar("M", bound=BaseModel)


@dataclass
class RawConfig:
    """The parsed TOML of the project's config, with where it came from and a key→line map."""

    file: str
    """Project-relative name of the file ("itest.toml", "pyproject.toml") or "" when there is none."""
    data: dict[str, Any] = field(default_factory=dict)
    lines: dict[tuple[str, ...], int] = field(default_factory=dict)
    present: bool = True
    """False for a pyproject.toml without a [tool.itest] table."""
    prefix: tuple[str, ...] = ()
    """Where the itest table sits inside the file: () for itest.toml, ("tool", "itest") for pyproject."""

    def line_of(self, loc: tuple[str | int, ...]) -> int | None:
        """The line of the longest known prefix of the dotted key `loc` (list indices as ints)."""
        exact = self.prefix + tuple(f"#{k}" if isinstance(k, int) else str(k) for k in loc)
        loose = self.prefix + tuple(str(k) for k in loc if not isinstance(k, int))
        for full in (exact, loose):
            while full:
                if full in self.lines:
                    return self.lines[full]
                full = full[:-1]
        return None

    def error(self, message: str, loc: tuple[str | int, ...] = ()) -> ConfigError:
        # Name the key as the user wrote it: in pyproject.toml that is under [tool.itest].
        key = format_key(self.prefix + loc) if loc else None
        return ConfigError(self.file or CONFIG_FILE, message, key=key, line=self.line_of(loc))

    def section(self, name: str) -> dict[str, Any]:
        value = self.data.get(name, {})
        if not isinstance(value, dict):
            raise self.error(f"'{name}' must be a table, got {type(value).__name__}", (name,))
        return value


_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(?:#.*)?$")
_ASSIGN = re.compile(
    r"^\s*((?:\"[^\"]*\"|'[^']*'|[A-Za-z0-9_-]+)(?:\s*\.\s*(?:\"[^\"]*\"|'[^']*'|[A-Za-z0-9_-]+))*)\s*="
)
_KEY_PART = re.compile(r"\"([^\"]*)\"|'([^']*)'|([A-Za-z0-9_-]+)")


def format_key(loc: tuple[str | int, ...]) -> str:
    """("assess", "rules", 1, "pattern") → "assess.rules[1].pattern"."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _split_key(text: str) -> tuple[str, ...]:
    return tuple(m.group(1) or m.group(2) or m.group(3) or "" for m in _KEY_PART.finditer(text))


def map_key_lines(text: str) -> dict[tuple[str, ...], int]:
    """Map every table header and assigned key to its 1-based line (first occurrence wins)."""
    lines: dict[tuple[str, ...], int] = {}
    table: tuple[str, ...] = ()
    array_counts: dict[tuple[str, ...], int] = {}
    in_multiline: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        if in_multiline:
            if in_multiline in line:
                in_multiline = None
            continue
        header = _HEADER.match(line)
        if header:
            table = _split_key(header.group(1))
            lines.setdefault(table, number)
            if line.lstrip().startswith("[["):
                # Array of tables: each entry gets its own index so errors point at the right one.
                index = array_counts.get(table, 0)
                array_counts[table] = index + 1
                table = (*table, f"#{index}")
                lines.setdefault(table, number)
            continue
        assign = _ASSIGN.match(line)
        if assign:
            lines.setdefault(table + _split_key(assign.group(1)), number)
            rest = line[assign.end() :]
            for quote in ('"""', "'''"):
                if rest.count(quote) == 1:
                    in_multiline = quote
    return lines


def _decode_error(file: str, exc: tomllib.TOMLDecodeError) -> ConfigError:
    match = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
    line = int(match.group(1)) if match else None
    message = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
    return ConfigError(file, f"not valid TOML: {message}; fix the syntax", line=line)


def load_raw_config(project: Project) -> RawConfig:
    """Read the project's config file; no file is an empty config, not an error."""
    itest = project.root / CONFIG_FILE
    pyproject = project.root / PYPROJECT_FILE
    if _is_config_file(itest, CONFIG_FILE):
        return _load(itest, CONFIG_FILE, ())
    if _is_config_file(pyproject, PYPROJECT_FILE):
        raw = _load(pyproject, PYPROJECT_FILE, ("tool", "itest"))
        # A pyproject without [tool.itest] is no config at all.
        return raw if raw.present else RawConfig(file="")
    return RawConfig(file="")


def _is_config_file(path: Path, name: str) -> bool:
    """True for a readable file; False when nothing is there.

    Anything else in the config's place (a directory, a dangling symlink, a pipe) is an error:
    skipping it would silently run without the config the user meant to give.
    """
    if path.is_file():
        return True
    if path.is_dir():
        raise ConfigError(
            name, f"{path} is a directory, not a file; remove or rename it (the config must be a TOML file)"
        )
    if path.is_symlink():
        target = path.readlink()
        raise ConfigError(
            name,
            f"{path} is a symlink to '{target}', which does not exist (or loops); "
            "point it at the config file or remove it",
        )
    if path.exists():
        raise ConfigError(name, f"{path} is not a regular file; replace it with a TOML file or remove it")
    return False


_TOO_DEEP = "nested too deeply to read; flatten the arrays and tables"


def _load(path: Path, name: str, prefix: tuple[str, ...]) -> RawConfig:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(name, f"not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8") from exc
    except OSError as exc:
        raise ConfigError(name, f"cannot be read: {exc.strerror}") from exc
    # Editors on Windows save a byte-order mark that TOML does not allow; it sits on line 1
    # and holds no newline, so dropping it leaves every line number as it was.
    text = text.removeprefix("\ufeff")
    try:
        data: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _decode_error(name, exc) from exc
    except RecursionError as exc:
        # tomllib recurses once per nested array or inline table; thousands of them exhaust the stack.
        raise ConfigError(name, _TOO_DEEP) from exc
    present = True
    for key in prefix:
        present = present and key in data
        value = data.get(key, {})
        if not isinstance(value, dict):
            raise ConfigError(name, f"'{key}' must be a table", key=".".join(prefix))
        data = value
    raw = RawConfig(file=name, data=data, lines=map_key_lines(text), prefix=prefix, present=present)
    unknown = sorted(set(data) - set(TOP_LEVEL_SECTIONS))
    if unknown:
        known = ", ".join(sorted(TOP_LEVEL_SECTIONS))
        raise raw.error(f"unknown key {unknown[0]!r}; the known top-level keys are: {known}", (unknown[0],))
    discover = data.get("discover")
    if discover is not None and not isinstance(discover, bool):
        raise raw.error(f"'discover' must be true or false, got {discover!r}", ("discover",))
    return raw


def check_regex(what: str, value: str | None) -> str | None:
    """A pydantic field check: `value` compiles as a regular expression (the error quotes it)."""
    if value is not None:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"{what} {value!r} is not a valid regular expression: {exc}") from exc
    return value


def validate_section(raw: RawConfig, loc: tuple[str | int, ...], data: Any, model: type[M]) -> M:
    """Validate `data` (found at dotted key `loc`) with `model`; errors name the file, the key and the line."""
    try:
        return model.model_validate(data)
    except RecursionError as exc:
        raise raw.error(_TOO_DEEP, loc) from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        err_loc: tuple[str | int, ...] = loc + tuple(first["loc"])
        kind = first["type"]
        if kind == "extra_forbidden":
            message = f"unknown key {err_loc[-1]!r}"
            fields = sorted(model.model_fields)
            hint = getattr(model, "known_keys_hint", None)
            message += f"; known keys: {hint() if callable(hint) else ', '.join(fields)}"
        elif kind == "missing":
            message = f"missing required key {err_loc[-1]!r}"
        else:
            got = first.get("input")
            message = str(first["msg"])
            if kind == "value_error":
                # Our own validators' messages: pydantic prefixes them, and most already quote the value.
                message = message.removeprefix("Value error, ")
            # Only scalars are quoted: the repr of a table or array can be huge, or nested too deep to build.
            if not isinstance(got, dict | list) and f"got {got!r}" not in message and f"got {got}" not in message:
                message += f" (got {got!r})"
        raise raw.error(message, err_loc) from exc
