"""Map file names in coverage reports to repository files.

Reports name files in many ways: Go import paths (`example.com/demo/internal/x.go`,
mapped through every `go.mod` in the project), paths relative to a Cobertura
`<source>`, and absolute paths from another machine (`/home/runner/work/app/app/pkg/x.go`).
What is neither exact nor a module path is matched by the longest common suffix of
path components; what cannot be matched is returned with the closest candidates,
never dropped silently (diff-cover's most common complaint, "No lines with coverage
information", comes from exactly this).
"""

from __future__ import annotations

import difflib
import os
import posixpath
import re
from collections.abc import Iterable
from pathlib import Path

from .models import Model

SKIP_DIRS = {".git", ".hg", ".svn", "node_modules", ".itest", "__pycache__", ".venv", "venv", ".tox"}
_MODULE_LINE = re.compile(r"^\s*module\s+\"?([^\s\"]+)\"?", re.MULTILINE)


class UnmatchedPath(Model):
    """A file named in a coverage report that matches no file of the repository."""

    name: str
    report: str
    reason: str
    candidates: list[str] = []


def list_files(root: Path) -> list[str]:
    """Project-relative POSIX paths of every file under `root` (VCS, state and dependency folders pruned)."""
    out: list[str] = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS]
        rel = os.path.relpath(folder, root)
        prefix = "" if rel == "." else rel.replace(os.sep, "/") + "/"
        out.extend(prefix + f for f in files)
    return out


class PathMatcher:
    """Resolve report file names to project-relative paths."""

    def __init__(self, root: Path, files: Iterable[str] | None = None) -> None:
        self.root = root.resolve()
        self.root_posix = self.root.as_posix().rstrip("/") + "/"
        self.files = set(list_files(self.root) if files is None else files)
        self.by_base: dict[str, list[str]] = {}
        for f in self.files:
            self.by_base.setdefault(f.rsplit("/", 1)[-1], []).append(f)
        self.modules = self._modules()
        self._cache: dict[tuple[str, tuple[str, ...]], str | None] = {}

    def _modules(self) -> list[tuple[str, str]]:
        """(module path, project-relative folder with trailing slash or "") for every go.mod, longest first."""
        mods: list[tuple[str, str]] = []
        for f in self.files:
            if f == "go.mod" or f.endswith("/go.mod"):
                try:
                    text = (self.root / f).read_text(encoding="utf-8", errors="replace")
                except OSError:
                    continue
                m = _MODULE_LINE.search(text)
                if m:
                    folder = f[: -len("go.mod")]
                    mods.append((m.group(1).rstrip("/"), folder))
        mods.sort(key=lambda x: -len(x[0]))
        return mods

    def match(self, name: str, sources: Iterable[str] = ()) -> str | None:
        """The project-relative file `name` denotes, or None."""
        key = (name, tuple(sources))
        if key in self._cache:
            return self._cache[key]
        found = self._match(name, key[1])
        self._cache[key] = found
        return found

    def _match(self, name: str, sources: tuple[str, ...]) -> str | None:
        norm = name.replace("\\", "/")
        while norm.startswith("./"):
            norm = norm[2:]
        if norm in self.files:
            return norm
        for module, folder in self.modules:
            if norm.startswith(module + "/"):
                rel = folder + norm[len(module) + 1 :]
                if rel in self.files:
                    return rel
        variants = [norm]
        for src in sources:
            joined = posixpath.normpath(posixpath.join(src.replace("\\", "/"), norm))
            variants.insert(0, joined)
        for v in variants:
            if v.startswith(self.root_posix) and v[len(self.root_posix) :] in self.files:
                return v[len(self.root_posix) :]
        for v in variants:
            found = self._by_suffix(v)
            if found:
                return found
        return None

    def _by_suffix(self, path: str) -> str | None:
        parts = [p for p in path.split("/") if p]
        if not parts:
            return None
        cands = self.by_base.get(parts[-1], [])
        best: list[str] = []
        best_n = 0
        for c in cands:
            cparts = c.split("/")
            n = _common_suffix(parts, cparts)
            whole = n == len(cparts)
            # The whole repo path at the end of the foreign path (CI checkout + repo path) is a
            # match; otherwise ask for two components, so a lone "util.go" never matches.
            score = n + (1000 if whole else 0)
            if not whole and n < 2:
                continue
            if score > best_n:
                best, best_n = [c], score
            elif score == best_n:
                best.append(c)
        return best[0] if len(best) == 1 else None

    def candidates(self, name: str, limit: int = 3) -> list[str]:
        """The repository files closest to an unmatched name (same file name first, then similar paths)."""
        norm = name.replace("\\", "/")
        parts = [p for p in norm.split("/") if p]
        if not parts:
            return []
        same = sorted(self.by_base.get(parts[-1], []), key=lambda c: (-_common_suffix(parts, c.split("/")), c))
        if len(same) >= limit:
            return same[:limit]
        ext = posixpath.splitext(parts[-1])[1]
        pool = [f for f in self.files if f.endswith(ext)] if ext else list(self.files)
        tail = "/".join(parts[-3:])
        close = difflib.get_close_matches(tail, pool[:20000], n=limit, cutoff=0.3)
        return (same + [c for c in close if c not in same])[:limit]

    def describe_miss(self, name: str, report: str) -> UnmatchedPath:
        """An UnmatchedPath saying why `name` matched nothing."""
        norm = name.replace("\\", "/")
        if self.modules and not norm.startswith("/") and "." in norm.split("/", 1)[0]:
            mods = ", ".join(m for m, _ in self.modules)
            reason = f"import path outside this project's modules ({mods}) or the file no longer exists"
        elif norm.startswith("/"):
            reason = "absolute path from another checkout; no repository file shares enough of its path"
        else:
            reason = "no repository file has this path or a unique suffix of it"
        return UnmatchedPath(name=name, report=report, reason=reason, candidates=self.candidates(name))


def _common_suffix(a: list[str], b: list[str]) -> int:
    n = 0
    for x, y in zip(reversed(a), reversed(b), strict=False):
        if x != y:
            break
        n += 1
    return n
