"""Which tests reach a changed package: the Go import graph (`go list`) and the Python AST import graph.

Go: `go list -deps -test -json ./...` with the phases' build tags, reduced to the
module's own packages and their imports, cached under `.itest/cache/` keyed by the
commit (plus a fingerprint of uncommitted Go changes). Python: every module's
imports read with `ast`, cached per file by size and mtime.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import re
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import NotFoundError, RunError, ToolNotFoundError
from .process import run_capture, which
from .repo import Project

GRAPH_VERSION = 1
GO_LIST_TIMEOUT_S = 120.0
SKIP_DIRS = {".git", ".hg", ".svn", "vendor", "node_modules", ".itest", "__pycache__", ".venv", "venv", "testdata"}
_GO_IMPORT_BLOCK = re.compile(r"^import\s*\((.*?)^\)", re.MULTILINE | re.DOTALL)
_GO_IMPORT_LINE = re.compile(r'^import\s+(?:[\w.]+\s+)?"([^"]+)"', re.MULTILINE)
_GO_QUOTED = re.compile(r'^\s*(?:[\w.]+\s+)?"([^"]+)"', re.MULTILINE)
_MODULE_LINE = re.compile(r"^module\s+\"?([^\s\"]+)\"?", re.MULTILINE)


# -- Go ---------------------------------------------------------------------------------------


@dataclass
class GoGraph:
    """A Go module's own packages: import path → directory (module-relative) and imports of own packages."""

    module: str
    module_dir: str
    """The module's folder relative to the project root ("" for the root)."""
    packages: dict[str, str] = field(default_factory=dict)
    imports: dict[str, list[str]] = field(default_factory=dict)
    cached: bool = False

    def package_for_dir(self, rel_dir: str) -> str:
        """The import path of a project-relative folder inside this module."""
        inner = rel_dir
        if self.module_dir:
            inner = rel_dir[len(self.module_dir) + 1 :] if rel_dir != self.module_dir else ""
        return self.module if not inner else f"{self.module}/{inner}"

    def path_to(self, starts: list[str], target: str) -> list[str] | None:
        """The shortest import chain from one of `starts` to `target` (both ends included), or None."""
        return _shortest_chain(self.imports, [start for start in starts if start in self.packages], target)


def _shortest_chain(imports: dict[str, list[str]], starts: list[str], target: str) -> list[str] | None:
    """Breadth-first: the shortest chain from one of `starts` to `target` along `imports` (both ends included)."""
    parent: dict[str, str | None] = {}
    queue: deque[str] = deque()
    for start in starts:
        if start not in parent:
            parent[start] = None
            queue.append(start)
    while queue:
        current = queue.popleft()
        if current == target:
            chain = [current]
            while (prev := parent[chain[-1]]) is not None:
                chain.append(prev)
            return list(reversed(chain))
        for nxt in imports.get(current, []):
            if nxt not in parent:
                parent[nxt] = current
                queue.append(nxt)
    return None


def find_go_module(project: Project) -> tuple[str, str] | None:
    """(module path, module folder relative to the project) of the project's go.mod, or None."""
    gomod = project.root / "go.mod"
    if not gomod.is_file():
        return None
    match = _MODULE_LINE.search(gomod.read_text(encoding="utf-8", errors="replace"))
    return (match.group(1), "") if match else None


def go_file_imports(path: Path) -> list[str]:
    """The import paths of one Go file (read from its import declarations)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    # Imports come before any declaration; cut the text so a later "import(" in a string is not read.
    cut = re.search(r"^(func|type|var|const)\s", text, re.MULTILINE)
    head = text[: cut.start()] if cut else text
    found = _GO_IMPORT_LINE.findall(head)
    for block in _GO_IMPORT_BLOCK.findall(head):
        found += _GO_QUOTED.findall(block)
    return found


def _fingerprint(project: Project, paths: list[str]) -> str:
    digest = hashlib.sha1()
    for rel in sorted(paths):
        try:
            stat = (project.root / rel).stat()
            digest.update(f"{rel}:{stat.st_mtime_ns}:{stat.st_size};".encode())
        except OSError:
            digest.update(f"{rel}:gone;".encode())
    return digest.hexdigest()[:16]


def load_go_graph(project: Project, tags: list[str], *, commit: str | None, dirty_go_files: list[str]) -> GoGraph:
    """The module's package graph from `go list -deps -test -json` (cached per commit, tags and dirty Go files)."""
    found = find_go_module(project)
    if found is None:
        raise NotFoundError(f"no go.mod at {project.root}; the Go import graph needs the module root as --repo")
    module, module_dir = found
    key_src = f"v{GRAPH_VERSION}|{commit or 'none'}|{','.join(sorted(tags))}|{_fingerprint(project, dirty_go_files)}"
    key = hashlib.sha1(key_src.encode()).hexdigest()[:20]
    cache_dir = project.state_dir / "cache"
    cache_file = cache_dir / f"golist-{key}.json"
    if commit is not None and cache_file.is_file():
        try:
            data = json.loads(cache_file.read_text(encoding="utf-8"))
            return GoGraph(module, module_dir, data["packages"], data["imports"], cached=True)
        except (OSError, ValueError, KeyError):
            pass  # a damaged cache entry is rebuilt below
    if which("go") is None:
        raise ToolNotFoundError("go", "install Go to use the Go import graph (https://go.dev/dl/)")
    argv = ["go", "list", "-e", "-deps", "-test", "-json=ImportPath,Dir,Imports,Standard,ForTest,Error"]
    if tags:
        argv.append("-tags=" + ",".join(sorted(tags)))
    argv.append("./...")
    env = {**os.environ, "GOFLAGS": os.environ.get("GOFLAGS", ""), "GOWORK": "off"}
    result = run_capture(
        argv, cwd=project.root / module_dir if module_dir else project.root, timeout=GO_LIST_TIMEOUT_S, env=env
    )
    if result.returncode != 0:
        detail = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else f"exit {result.returncode}"
        raise RunError(f"go list failed in {project.root}: {detail}")
    graph = GoGraph(module, module_dir)
    own_prefix = module + "/"
    root = (project.root / module_dir) if module_dir else project.root
    decoder = json.JSONDecoder()
    text = result.stdout
    pos = 0
    while pos < len(text):
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            break
        obj, pos = decoder.raw_decode(text, pos)
        path = obj.get("ImportPath", "")
        if obj.get("Standard") or not (path == module or path.startswith(own_prefix)):
            continue
        if " [" in path or path.endswith(".test"):
            continue  # test variants: their imports are read per test file instead
        directory = obj.get("Dir", "")
        try:
            rel = Path(directory).resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            continue
        graph.packages[path] = rel if rel != "." else ""
        graph.imports[path] = [imp for imp in obj.get("Imports", []) if imp == module or imp.startswith(own_prefix)]
    if commit is not None:
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = cache_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"packages": graph.packages, "imports": graph.imports}), encoding="utf-8")
        tmp.replace(cache_file)
    return graph


# -- Python -----------------------------------------------------------------------------------


def python_module_name(root: Path, rel_path: str) -> str:
    """The dotted module of a project-relative .py file: from its top-most package, else its path."""
    parts = rel_path.removesuffix(".py").split("/")
    if parts[-1] == "__init__":
        parts = parts[:-1]
    folder_parts = rel_path.split("/")[:-1]
    # Walk up while the folder is a package; the module name starts below the first non-package folder.
    start = len(folder_parts)
    while start > 0 and (root.joinpath(*folder_parts[:start]) / "__init__.py").is_file():
        start -= 1
    return ".".join(parts[start:]) if parts[start:] else ".".join(parts)


@dataclass
class PyGraph:
    """Project Python files (nodes are project-relative paths), their module names and own imports."""

    modules: dict[str, str] = field(default_factory=dict)
    """path → dotted module name."""
    imports: dict[str, list[str]] = field(default_factory=dict)
    """path → paths of the project modules it imports."""

    def path_to(self, start: str, target: str) -> list[str] | None:
        """The shortest import chain (paths) from file `start` to file `target`, or None."""
        return _shortest_chain(self.imports, [start], target)


def _raw_imports(source: bytes, module: str, is_package: bool) -> list[str]:
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []
    found: list[str] = []
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".") if package else []
                base_parts = base_parts[: len(base_parts) - (node.level - 1)] if node.level > 1 else base_parts
                base = ".".join(p for p in base_parts if p)
                target = f"{base}.{node.module}" if node.module and base else (node.module or base)
            else:
                target = node.module or ""
            if target:
                found.append(target)
                found += [f"{target}.{alias.name}" for alias in node.names if alias.name != "*"]
    return found


def load_python_graph(project: Project) -> PyGraph:
    """The AST import graph of the project's Python files (per-file cache by size and mtime)."""
    cache_file = project.state_dir / "cache" / "pyimports.json"
    try:
        cache: dict[str, list[Any]] = json.loads(cache_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        cache = {}
    fresh: dict[str, list[Any]] = {}
    raw: dict[str, list[str]] = {}
    graph = PyGraph()
    for folder, dirs, names in os.walk(project.root):
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS and not d.startswith(".")]
        for name in names:
            if not name.endswith(".py"):
                continue
            full = Path(folder) / name
            rel = full.relative_to(project.root).as_posix()
            try:
                stat = full.stat()
            except OSError:
                continue
            stamp = f"{stat.st_mtime_ns}:{stat.st_size}"
            entry = cache.get(rel)
            if entry and entry[0] == stamp:
                module, imports = str(entry[1]), [str(i) for i in entry[2]]
            else:
                module = python_module_name(project.root, rel)
                try:
                    imports = _raw_imports(full.read_bytes(), module, name == "__init__.py")
                except OSError:
                    continue
            fresh[rel] = [stamp, module, imports]
            graph.modules[rel] = module
            raw[rel] = imports
    by_module: dict[str, str] = {}
    for rel, module in sorted(graph.modules.items()):
        by_module.setdefault(module, rel)
    for rel, imports in raw.items():
        own: list[str] = []
        for imp in imports:
            # `import a.b.c` depends on a.b.c and, through package __init__, on a.b and a.
            parts = imp.split(".")
            for i in range(len(parts), 0, -1):
                target = by_module.get(".".join(parts[:i]))
                if target is not None and target != rel and target not in own:
                    own.append(target)
        graph.imports[rel] = own
    if fresh != cache:
        try:
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache_file.with_suffix(".tmp")
            tmp.write_text(json.dumps(fresh), encoding="utf-8")
            tmp.replace(cache_file)
        except OSError:
            pass  # the cache is an optimisation only
    return graph
