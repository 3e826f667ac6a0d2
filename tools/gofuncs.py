"""Function extents (first and last line) and risk signals for Go and Python source files.

Go files are read with `go/ast` by a small program shipped next to this module
(`gofuncs.go`, run with `go run`; the go command caches the build). Without `go`, a
gofmt-layout scan (`func` at column 0 up to the next `}` at column 0) stands in.
Python files are read with `ast`.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ItestError
from .process import go_helper_env, run_capture, which

HELPER = Path(__file__).with_name("gofuncs.go")

_WORDS = ("retry", "backoff", "attempt", "ratelimit", "timeout", "token", "auth", "deadline", "lock")
_PY_MODULE_SIGNALS = {
    "urllib": "http", "http": "http", "requests": "http", "httpx": "http", "aiohttp": "http",
    "socket": "net", "ssl": "net", "threading": "sync", "json": "json",
    "concurrent": "goroutine", "asyncio": "goroutine", "multiprocessing": "goroutine",
}  # fmt: skip
_GO_FUNC = re.compile(r"^func\s+(?:\(\s*\w*\s*(\*?\s*\w+)(?:\[[^\]]*\])?\s*\)\s*)?(\w+)")


@dataclass
class FuncInfo:
    """One function: name (Go: with receiver, Python: Class.method), inclusive lines, signals."""

    name: str
    line: int
    end: int
    signals: list[str] = field(default_factory=list)


def go_functions(root: Path, rel_paths: list[str], notes: list[str]) -> dict[str, list[FuncInfo]]:
    """Functions of Go files (project-relative paths) via go/ast, or the gofmt-layout scan without `go`."""
    if not rel_paths:
        return {}
    if which("go") is not None:
        try:
            res = run_capture(
                ["go", "run", str(HELPER)],
                cwd=HELPER.parent,
                timeout=120,
                env=go_helper_env(),
                stdin_data="\n".join(str(root / p) for p in rel_paths).encode(),
            )
            if res.returncode == 0:
                out: dict[str, list[FuncInfo]] = {}
                for item in json.loads(res.stdout or "[]") or []:
                    rel = Path(item["file"]).resolve().relative_to(root.resolve()).as_posix()
                    out[rel] = [FuncInfo(f["name"], f["line"], f["end"], list(f["signals"])) for f in item["funcs"]]
                return out
            notes.append(f"go/ast helper failed ({res.stderr.strip()[-200:]}); used a gofmt-layout scan instead")
        except (ItestError, ValueError, KeyError) as exc:
            notes.append(f"go/ast helper could not run ({exc}); used a gofmt-layout scan instead")
    else:
        notes.append("`go` is not on PATH: Go functions found by a gofmt-layout scan, not go/ast")
    return {p: _scan_go(root / p) for p in rel_paths}


def _scan_go(path: Path) -> list[FuncInfo]:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []
    out: list[FuncInfo] = []
    current: FuncInfo | None = None
    body: list[str] = []
    for i, text in enumerate(lines, 1):
        m = _GO_FUNC.match(text)
        if m and current is None:
            recv = (m.group(1) or "").replace(" ", "")
            current = FuncInfo(f"({recv}).{m.group(2)}" if recv else m.group(2), i, i)
            body = [text]
            if text.rstrip().endswith("}"):
                current.signals = _text_signals("\n".join(body))
                out.append(current)
                current = None
            continue
        if current is not None:
            body.append(text)
            if text.startswith("}"):
                current.end = i
                current.signals = _text_signals("\n".join(body))
                out.append(current)
                current = None
    return out


def _text_signals(text: str) -> list[str]:
    low = text.lower()
    found = {w for w in _WORDS if w in low}
    for needle, sig in (("http.", "http"), ("net.", "net"), ("go func", "goroutine"), ("sync.", "sync"),
                        ("select {", "select"), ("context.", "context"), ("time.sleep", "sleep")):  # fmt: skip
        if needle in low:
            found.add(sig)
    return sorted(found)


def python_functions(root: Path, rel_paths: list[str], notes: list[str]) -> dict[str, list[FuncInfo]]:
    """Functions and methods of Python files (project-relative paths) via `ast`."""
    out: dict[str, list[FuncInfo]] = {}
    for rel in rel_paths:
        try:
            tree = ast.parse((root / rel).read_bytes(), filename=rel)
        except (OSError, SyntaxError, ValueError) as exc:
            notes.append(f"{rel}: not parsed for functions ({exc.__class__.__name__})")
            continue
        aliases = _py_imports(tree)
        funcs: list[FuncInfo] = []
        _walk_py(tree, "", funcs, aliases)
        out[rel] = funcs
    return out


def _py_imports(tree: ast.Module) -> dict[str, str]:
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                names[(a.asname or a.name).split(".")[0]] = a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module:
            for a in node.names:
                names[a.asname or a.name] = node.module.split(".")[0]
    return names


def _walk_py(node: ast.AST, prefix: str, out: list[FuncInfo], aliases: dict[str, str]) -> None:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.ClassDef):
            _walk_py(child, f"{prefix}{child.name}.", out, aliases)
        elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
            out.append(
                FuncInfo(
                    f"{prefix}{child.name}", child.lineno, child.end_lineno or child.lineno, _py_signals(child, aliases)
                )
            )
            _walk_py(child, f"{prefix}{child.name}.", out, aliases)


def _py_signals(fn: ast.AST, aliases: dict[str, str]) -> list[str]:
    found: set[str] = set()
    if isinstance(fn, ast.AsyncFunctionDef):
        found.add("context")
    for node in ast.walk(fn):
        if isinstance(node, ast.Name):
            mod = aliases.get(node.id)
            if mod in _PY_MODULE_SIGNALS:
                found.add(_PY_MODULE_SIGNALS[mod])
            if node.id == "time" or mod == "time":
                found.add("sleep")
            low = node.id.lower()
            found.update(w for w in _WORDS if w in low)
        elif isinstance(node, ast.Attribute):
            low = node.attr.lower()
            found.update(w for w in _WORDS if w in low)
            if low == "sleep":
                found.add("sleep")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            v = node.value.lower()
            if "retry-after" in v or "ratelimit" in v:
                found.add("ratelimit")
            if "authorization" in v or "bearer" in v:
                found.add("auth")
        elif isinstance(node, ast.Await | ast.AsyncWith | ast.AsyncFor):
            found.add("goroutine")
    return sorted(found)
