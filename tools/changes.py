"""`assess_changes`: from a git diff to the phases worth running, with reasons.

The diff comes from gitdiff.py; each file gets a language, its Go package or
Python module, and categories with evidence from the rules in rules.py (paths and
the changed lines themselves, with comments and strings removed where a rule says
so). Phases are recommended for their own test files, their triggers, the import
graph (impact.py) and categories that match their names; every phase left out says why.

Each file is classified as soon as its patch has streamed past (while git diffs the
next files), and a changed line that recurs across files is classified once.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Literal

from pydantic import Field

from .config import load_raw_config
from .errors import ItestError
from .gitdiff import ChangedFile, ChangeSet, DiffLine, FileLines, scan_changes, trusted
from .models import Model
from .phases import Phase, PhaseSet, Runner, load_phases
from .repo import Project
from .rules import CompiledRule, LanguageRules, RuleSet, glob_match, load_rules

EVIDENCE_PER_FILE_CATEGORY = 3
EXAMPLES_PER_CATEGORY = 3
FILES_PER_REASON = 8
DEFAULT_MAX_FILES = 200
LINE_MEMO = 20_000
"""Distinct changed lines whose hits one assessment remembers (identical lines are classified once)."""

LANGUAGES = {
    ".go": "go", ".py": "python", ".pyi": "python", ".md": "markdown", ".markdown": "markdown", ".rst": "rst",
    ".txt": "text", ".adoc": "asciidoc", ".yml": "yaml", ".yaml": "yaml", ".toml": "toml", ".json": "json",
    ".ini": "ini", ".cfg": "ini", ".sh": "shell", ".bash": "shell", ".mk": "make", ".js": "javascript",
    ".mjs": "javascript", ".ts": "typescript", ".tsx": "typescript", ".rs": "rust", ".java": "java",
    ".rb": "ruby", ".c": "c", ".h": "c", ".cc": "cpp", ".cpp": "cpp", ".proto": "protobuf", ".sql": "sql",
    ".mod": "go-mod", ".sum": "go-sum", ".html": "html", ".css": "css",
}  # fmt: skip
NAMED_LANGUAGES = {"Makefile": "make", "GNUmakefile": "make", "Dockerfile": "dockerfile", "Jenkinsfile": "groovy"}
PROSE = {"markdown", "rst", "text", "asciidoc"}
"""Line rules skip prose unless a rule names the language: a README quoting `go func()` is not code."""
HASH_COMMENTS = {"yaml", "toml", "shell", "make", "ini", "dockerfile", "ruby"}
C_LIKE = {"javascript", "typescript", "rust", "java", "c", "cpp", "protobuf", "groovy", "css"}


# -- models -----------------------------------------------------------------------------------


class Evidence(Model):
    """Why a category fired: the place and the matched text."""

    file: str
    line: int | None = None
    """New-file line for added lines, old-file line for removed ones (see `removed`); None for a path rule."""
    removed: bool = False
    text: str = ""
    match: str = ""
    rule: str


class FileCategory(Model):
    """One category of one file with its (bounded) evidence."""

    category: str
    findings: int
    evidence: list[Evidence] = Field(default_factory=list)


class FileAssessment(ChangedFile):
    """One changed file as the assessment sees it."""

    # The ChangedFile fields come first (same order, same JSON); the assessment adds these.
    language: str | None = None
    go_package: str | None = None
    python_module: str | None = None
    categories: list[FileCategory] = Field(default_factory=list)
    ignored: bool = False
    """Matched `[assess] ignore`: listed, never classified."""
    lines_truncated: bool = False
    """Only the first changed lines were read for rules (a huge diff)."""


class CategorySummary(Model):
    """A category over the whole change, with its one-line risk."""

    category: str
    title: str
    files: int
    findings: int
    risk: str
    examples: list[Evidence] = Field(default_factory=list)


ReasonKind = Literal["test-file", "trigger", "import", "category"]


class Reason(Model):
    """One reason a phase is recommended."""

    kind: ReasonKind
    text: str
    files: list[str] = Field(default_factory=list)
    categories: list[str] = Field(default_factory=list)
    import_path: list[str] = Field(default_factory=list)


class PhaseRecommendation(Model):
    """A phase worth running for this change, with every reason."""

    phase: str
    runner: str
    order: int
    available: bool = True
    note: str | None = None
    reasons: list[Reason]


class PhaseSkipped(Model):
    """A phase deliberately not recommended, and why."""

    phase: str
    why: str


class CIFailure(Model):
    """A recent failed CI run of the branch that touched integration jobs (filled once the GitHub client is wired)."""

    workflow: str
    run_url: str = ""
    branch: str = ""
    conclusion: str = "failure"
    failing_tests: list[str] = Field(default_factory=list)


class Totals(Model):
    files: int = 0
    added: int = 0
    removed: int = 0


class Assessment(Model):
    """What changed, what it touches, and which phases to run in which order."""

    summary: str
    base: str | None
    base_label: str
    base_reason: str
    head: str
    head_label: str
    include_worktree: bool
    totals: Totals
    files: list[FileAssessment]
    files_omitted: int = 0
    """Files beyond `max_files`, counted in totals and categories but not listed."""
    categories: list[CategorySummary] = Field(default_factory=list)
    risk: list[str] = Field(default_factory=list)
    recommended: list[PhaseRecommendation] = Field(default_factory=list)
    not_recommended: list[PhaseSkipped] = Field(default_factory=list)
    import_graph: list[str] = Field(default_factory=list)
    """What the import-graph step did (built, cached, skipped and why)."""
    ci_failures: list[CIFailure] | None = None
    """None: not looked up; `assess_ci.attach_ci_failures` fills it (or notes why not)."""
    notes: list[str] = Field(default_factory=list)


# -- language, package, module -----------------------------------------------------------------


def language_of(path: str) -> str | None:
    """The language of a file from its name."""
    name = path.rpartition("/")[2]
    if name in NAMED_LANGUAGES:
        return NAMED_LANGUAGES[name]
    dot = name.rfind(".")
    return LANGUAGES.get(name[dot:].lower()) if dot > 0 else None


class _Locator:
    """Go package and Python module of project files (go.mod and __init__.py looked up once per folder)."""

    def __init__(self, project: Project) -> None:
        self.root = project.root
        self._mods: dict[str, tuple[str, str] | None] = {}
        self._pkg_dirs: dict[str, bool] = {}
        self._starts: dict[str, int] = {}

    def _module_for(self, folder: str) -> tuple[str, str] | None:
        if folder in self._mods:
            return self._mods[folder]
        gomod = self.root / folder / "go.mod" if folder else self.root / "go.mod"
        found: tuple[str, str] | None = None
        if gomod.is_file():
            match = re.search(r"^module\s+\"?([^\s\"]+)", gomod.read_text(encoding="utf-8", errors="replace"), re.M)
            found = (match.group(1), folder) if match else None
        elif folder:
            found = self._module_for(folder.rpartition("/")[0])
        self._mods[folder] = found
        return found

    def go_package(self, path: str) -> str | None:
        folder = path.rpartition("/")[0]
        found = self._module_for(folder)
        if found is None:
            return None
        module, mod_dir = found
        inner = folder[len(mod_dir) :].lstrip("/") if mod_dir else folder
        return f"{module}/{inner}" if inner else module

    def _is_package(self, folder: str) -> bool:
        if folder not in self._pkg_dirs:
            self._pkg_dirs[folder] = bool(folder) and (self.root / folder / "__init__.py").is_file()
        return self._pkg_dirs[folder]

    def _package_start(self, folder: str) -> int:
        """How many leading folders of `folder` are not part of the package path (cached per folder)."""
        start = self._starts.get(folder)
        if start is None:
            folders = folder.split("/") if folder else []
            start = len(folders)
            while start > 0 and self._is_package("/".join(folders[:start])):
                start -= 1
            self._starts[folder] = start
        return start

    def python_module(self, path: str) -> str:
        parts = path.removesuffix(".pyi").removesuffix(".py").split("/")
        if parts[-1] == "__init__":
            parts = parts[:-1]
        start = self._package_start(path.rpartition("/")[0])
        return ".".join(parts[start:]) or ".".join(parts)


# -- comments and strings -----------------------------------------------------------------------

_GO_TOKENS = re.compile(r"//.*|/\*.*?(?:\*/|$)|\"(?:\\.|[^\"\\])*\"?|`[^`]*`?|'(?:\\.|[^'\\])*'?")
_PY_TOKENS = re.compile(
    r"#.*|[rRbBuUfF]{0,2}(?:\"\"\".*?(?:\"\"\"|$)|'''.*?(?:'''|$)|\"(?:\\.|[^\"\\])*\"?|'(?:\\.|[^'\\])*'?)"
)
_C_TOKENS = re.compile(r"//.*|/\*.*?(?:\*/|$)|\"(?:\\.|[^\"\\])*\"?|'(?:\\.|[^'\\])*'?|`[^`]*`?")
_HASH_TOKENS = re.compile(r"(?:^|\s)#.*|\"(?:\\.|[^\"\\])*\"?|'[^']*'?")
_GO_IMPORT = re.compile(r'^\s*(?:import\s+)?(?:[\w.]+\s+)?"([^"\s]+)"\s*(?://.*)?$')
_PY_IMPORT = re.compile(r"^\s*import\s+([\w., ]+?)\s*(?:#.*)?$")
_PY_FROM = re.compile(r"^\s*from\s+(\.*[\w.]*)\s+import\b")
_FAST_BLOCKERS = {
    "go": re.compile(r"[\"'`]|/\*"),
    "c": re.compile(r"[\"'`]|/\*"),
    "python": re.compile(r"[\"']"),
    "hash": re.compile(r"[\"']|/\*"),
}
"""What sends a line (before its line comment) down the token walk: a quote, or a block comment opening."""
_LINE_COMMENT = {"go": "//", "c": "//", "python": "#", "hash": "#"}
_STATE_MARKERS = {"go": ("/*", "*/", "`"), "python": ('"""', "'''"), "c": ("/*", "*/", "`")}


@dataclass
class _Views:
    code: str
    code_strings: str
    imports: list[str] = field(default_factory=list)


class _Stripper:
    """Splits lines into code / strings / comments, carrying block comments and multi-line strings over."""

    def __init__(self, language: str | None) -> None:
        self.kind = (
            "go"
            if language == "go"
            else "python"
            if language == "python"
            else "c"
            if language in C_LIKE
            else "hash"
            if language in HASH_COMMENTS
            else None
        )
        self.state: str | None = None  # "*/", "`", '"""', "'''" while inside a block
        self.last_line = -10

    def needs_tracking(self, text: str) -> bool:
        markers = _STATE_MARKERS.get(self.kind or "")
        return self.state is not None or (markers is not None and any(m in text for m in markers))

    def views(self, text: str, number: int) -> _Views:
        """Split one line (and update the carried state)."""
        if number != self.last_line + 1:
            self.state = None  # a gap in the hunk: the state before it is unknown
        self.last_line = number
        kind = self.kind
        if kind is None:
            return _Views(text, text)
        if self.state is None:
            # Fast paths, same answer as the token walk below: no quote at all, and at most a line comment.
            cut = text.find(_LINE_COMMENT[kind])
            head = text if cut < 0 else text[:cut]
            if _FAST_BLOCKERS[kind].search(head) is None:
                if cut < 0:
                    return _Views(text, text)
                if kind != "hash":  # a hash comment needs the space before it: the token walk decides
                    return _Views(head, head)
        code: list[str] = []
        strings: list[str] = []
        pos = 0
        if self.state is not None:
            end = text.find(self.state)
            is_comment = self.state == "*/"
            if end < 0:
                return _Views("", "" if is_comment else text)
            stop = end + len(self.state)
            if not is_comment:
                strings.append(text[:stop])
            code.append(" ")
            pos = stop
            self.state = None
        pattern = {"go": _GO_TOKENS, "python": _PY_TOKENS, "c": _C_TOKENS, "hash": _HASH_TOKENS}[kind]
        for match in pattern.finditer(text, pos):
            token = match.group(0)
            before = text[pos : match.start()]
            code.append(before)
            strings.append(before)
            stripped = token.lstrip()
            if stripped.startswith(("//", "#")):
                pass
            elif stripped.startswith("/*"):
                if not (len(stripped) >= 4 and stripped.endswith("*/")):
                    self.state = "*/"
            else:
                body = stripped.lstrip("rRbBuUfF")
                quote = body[:3] if body[:3] in ('"""', "'''") else body[:1]
                closed = len(body) >= 2 * len(quote) and body.endswith(quote)
                if not closed and quote in ("`", '"""', "'''"):
                    self.state = quote
                code.append(quote + quote)
                strings.append(token)
            pos = match.end()
        code.append(text[pos:])
        strings.append(text[pos:])
        return _Views("".join(code), "".join(strings))


def _imports_of(language: str | None, text: str) -> list[str]:
    if language == "go":
        match = _GO_IMPORT.match(text)
        return [match.group(1)] if match else []
    if language == "python":
        match = _PY_FROM.match(text)
        if match:
            return [match.group(1)]
        match = _PY_IMPORT.match(text)
        if match:
            return [part.split(" as ")[0].strip() for part in match.group(1).split(",") if part.strip()]
    return []


# -- classification ---------------------------------------------------------------------------


@dataclass
class _Hits:
    findings: dict[str, int] = field(default_factory=dict)
    evidence: dict[str, list[Evidence]] = field(default_factory=dict)

    def add(self, category: str, evidence: Evidence) -> None:
        self.findings[category] = self.findings.get(category, 0) + 1
        kept = self.evidence.setdefault(category, [])
        if len(kept) < EVIDENCE_PER_FILE_CATEGORY:
            kept.append(evidence)


def classify_file(path: str, language: str | None, lines: FileLines | None, rules: RuleSet) -> _Hits:
    """Run the path rules and the line rules of `rules` over one file."""
    hits = _Hits()
    if rules.any_path_rule is not None and rules.any_path_rule.matches(path):
        for compiled in rules.path_rules:
            if not compiled.path_applies(path):
                continue
            glob = glob_match(path, compiled.rule.paths)
            if glob is not None:
                hits.add(
                    compiled.rule.category,
                    trusted(
                        Evidence,
                        file=path,
                        line=None,
                        removed=False,
                        text=f"path matches {glob!r}",
                        match=glob,
                        rule=compiled.rule.id,
                    ),
                )
    if lines is None or not lines.lines:
        return hits
    applicable = rules.line_rules_for(path, language, PROSE)
    if not applicable.rules:
        return hits
    strippers = {"+": _Stripper(language), "-": _Stripper(language)}
    # A line's hits depend only on its text and the rules for its language (not on the file), once no block
    # comment or string is open: identical lines (a change repeated across files) are classified once.
    memo = applicable.memo
    prepared: _Prepared | None = None  # built at the first line the memo does not answer
    for diff_line in lines.lines:
        text = diff_line.text
        number = diff_line.line
        stripper = strippers[diff_line.kind]
        clean = stripper.state is None or number != stripper.last_line + 1
        if clean:
            known = memo.get(text)
            if known is not None:
                stripper.state = None
                stripper.last_line = number
                for compiled, matched in known:
                    hits.add(compiled.rule.category, _evidence(path, diff_line, matched, compiled))
                continue
        if prepared is None:
            prepared = _prepare(applicable, lines)
            if not prepared.live:
                return hits  # no needle of any rule anywhere in this file: nothing more can fire
        line_hits = _classify_line(text, number, stripper, language, prepared)
        for compiled, matched in line_hits:
            hits.add(compiled.rule.category, _evidence(path, diff_line, matched, compiled))
        if clean and stripper.state is None and len(memo) < LINE_MEMO:
            memo[text] = line_hits
    return hits


@dataclass(slots=True)
class _Prepared:
    """For one file: the rules that can fire in it at all, and the needles they have in it."""

    live: list[CompiledRule]
    line_needles: tuple[str, ...]
    needles: set[str]
    open_rules: bool


def _prepare(applicable: LanguageRules, lines: FileLines) -> _Prepared:
    """Which rules can fire anywhere in this file at all."""
    # A rule is tried on a line only when one of its needles (literals every match of its pattern holds)
    # occurs in the line as written.
    blob = "\n".join([d.text for d in lines.lines]).lower()
    # Lower-cased needles are exact only for ASCII text; otherwise every needle counts as present.
    needles = {n for n in applicable.needles if n in blob} if blob.isascii() else set(applicable.needles)
    needle_rules = applicable.needle_rules
    positions = set(applicable.open_rules)
    for needle in needles:
        positions.update(needle_rules[needle])
    live = [applicable.rules[i] for i in sorted(positions)]  # table order
    # A rule without needles makes every line a candidate.
    return _Prepared(live, tuple(needles), needles, bool(applicable.open_rules))


def _classify_line(
    text: str, number: int, stripper: _Stripper, language: str | None, prepared: _Prepared
) -> tuple[tuple[CompiledRule, str], ...]:
    """The live rules that match one changed line, with the matched text (updates the stripper's state)."""
    live, needles = prepared.live, prepared.needles
    found_needles: set[str] | None = None  # None: not known (non-ASCII line), try every live rule
    if text.isascii():
        low = text.lower()
        found_needles = {n for n in prepared.line_needles if n in low}
        if not found_needles and not prepared.open_rules:
            # Not a candidate, but a block comment or multi-line string may open or close here.
            if stripper.needs_tracking(text):
                stripper.views(text, number)
            else:
                stripper.last_line = number
            return ()
    views = stripper.views(text, number)
    imports: list[str] | None = None
    in_view: dict[str, set[str] | None] = {}
    out: list[tuple[CompiledRule, str]] = []
    for compiled in live:
        rule_set = compiled.needle_set
        if rule_set is not None and found_needles is not None and rule_set.isdisjoint(found_needles):
            continue
        scope = compiled.scope
        regex = compiled.regex
        assert regex is not None
        found: re.Match[str] | None = None
        if scope == "import":
            if imports is None:
                imports = _imports_of(language, text) if views.code.strip() else []
            for imp in imports:
                found = regex.search(imp)
                if found:
                    break
        else:
            view = text if scope == "any" else views.code_strings if scope == "code+strings" else views.code
            if rule_set is not None:
                # The needles must survive in the view too: a URL in a comment is not in the code.
                if scope not in in_view:
                    in_view[scope] = _needles_in(view, found_needles if found_needles is not None else needles)
                seen = in_view[scope]
                if seen is not None and rule_set.isdisjoint(seen):
                    continue
            found = regex.search(view)
        if found is not None:
            out.append((compiled, found.group(0)))
    return tuple(out)


def _needles_in(view: str, needles: set[str]) -> set[str] | None:
    """Which of `needles` occur in `view` (None when it cannot tell: non-ASCII text)."""
    if not view.isascii():
        return None
    low = view.lower()
    return {n for n in needles if n in low}


def _evidence(path: str, diff_line: DiffLine, matched: str, compiled: CompiledRule) -> Evidence:
    return trusted(
        Evidence,
        file=path,
        line=diff_line.line,
        removed=diff_line.kind == "-",
        text=diff_line.text.strip()[:160],
        match=matched.strip()[:80],
        rule=compiled.rule.id,
    )


# -- recommendation ---------------------------------------------------------------------------


@dataclass
class _Impact:
    """Import-graph answers: for a phase, the changed files its tests reach and through which chain."""

    go: dict[str, list[tuple[str, list[str]]]] = field(default_factory=dict)
    py: dict[str, list[tuple[str, list[str]]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    asked: set[str] = field(default_factory=set)
    """Changed files the import graph was asked about: for these a phase's tests reaching them is known."""


def _phase_test_files(phase: Phase, path: str) -> bool:
    if path in phase.test_files:
        return True
    if phase.runner is Runner.PYTEST:
        for folder in phase.paths:
            folder = folder.rstrip("/")
            if path == folder or path.startswith(folder + "/"):
                return True
    if phase.runner is Runner.GO and not phase.test_files and path.endswith("_test.go"):
        folder = path.rpartition("/")[0]
        for pkg in phase.packages:
            pkg_dir = pkg.removeprefix("./").rstrip("/")
            if pkg_dir.endswith("/..."):
                base = pkg_dir[:-4]
                if base in (".", "") or folder == base or folder.startswith(base + "/"):
                    return True
            elif pkg_dir in (".", "") and folder == "" or folder == pkg_dir:
                return True
    return False


def _go_impact(
    project: Project, phases: PhaseSet, files: list[FileAssessment], changeset: ChangeSet, asked: set[str]
) -> tuple[dict[str, list[tuple[str, list[str]]]], list[str]]:
    """phase → [(changed file, import chain)] for Go phases whose tests import a changed non-test package."""
    from .impact import find_go_module, go_file_imports, load_go_graph

    go_phases = [p for p in phases.phases if p.runner is Runner.GO]
    changed = [f for f in files if f.language == "go" and not f.path.endswith("_test.go") and f.go_package]
    if not go_phases or not changed:
        return {}, []
    if find_go_module(project) is None:
        return {}, ["Go import graph skipped: no go.mod at the project root"]
    tags = sorted({t for p in go_phases for t in p.tags})
    dirty = [f.path for f in files if f.language in ("go", "go-mod")] if changeset.include_worktree else []
    try:
        graph = load_go_graph(project, tags, commit=changeset.head or None, dirty_go_files=dirty)
    except ItestError as exc:
        return {}, [f"Go import graph unavailable: {exc}"]
    status = "cached" if graph.cached else "built with go list"
    notes = [f"Go import graph: {len(graph.packages)} packages ({status}; tags: {','.join(tags) or 'none'})"]
    asked.update(f.path for f in changed)
    changed_pkgs: dict[str, list[str]] = {}
    for f in changed:
        assert f.go_package is not None
        changed_pkgs.setdefault(f.go_package, []).append(f.path)
    result: dict[str, list[tuple[str, list[str]]]] = {}
    file_imports: dict[str, list[str]] = {}
    for phase in go_phases:
        sources = _phase_go_sources(project, phase, graph)
        found: list[tuple[str, list[str]]] = []
        for pkg, pkg_files in sorted(changed_pkgs.items()):
            for source in sources:
                if source not in file_imports:
                    file_imports[source] = go_file_imports(project.root / source)
                starts = [i for i in file_imports[source] if i in graph.packages]
                chain = graph.path_to(starts, pkg)
                if chain is not None:
                    found += [(path, [source, *chain]) for path in pkg_files]
                    break
        if found:
            result[phase.name] = found
    return result, notes


def _phase_go_sources(project: Project, phase: Phase, graph: object) -> list[str]:
    """The files whose imports a Go phase compiles: its test files, or every .go file of its packages."""
    sources = list(phase.test_files)
    for pkg in phase.packages:
        pkg_dir = pkg.removeprefix("./").rstrip("/")
        recursive = pkg_dir.endswith("...")
        pkg_dir = pkg_dir.removesuffix("...").rstrip("/")
        folder = project.root / pkg_dir if pkg_dir not in ("", ".") else project.root
        if not folder.is_dir():
            continue
        candidates = folder.rglob("*.go") if recursive else folder.glob("*.go")
        for path in candidates:
            rel = path.relative_to(project.root).as_posix()
            # Non-test files are compiled into every phase of the package; other test files only when
            # the phase does not name its own.
            if (not rel.endswith("_test.go") or not phase.test_files) and rel not in sources:
                if "/vendor/" not in f"/{rel}" and "/testdata/" not in f"/{rel}":
                    sources.append(rel)
    return sources


def _py_impact(
    project: Project, phases: PhaseSet, files: list[FileAssessment], asked: set[str]
) -> tuple[dict[str, list[tuple[str, list[str]]]], list[str]]:
    """phase → [(changed file, import chain)] for pytest phases whose test files import a changed module."""
    from .impact import load_python_graph

    py_phases = [p for p in phases.phases if p.runner is Runner.PYTEST]
    changed = [f.path for f in files if f.language == "python" and f.status != "deleted"]
    if not py_phases or not changed:
        return {}, []
    graph = load_python_graph(project)
    asked.update(changed)
    notes = [f"Python import graph: {len(graph.modules)} modules (AST)"]
    result: dict[str, list[tuple[str, list[str]]]] = {}
    for phase in py_phases:
        tests = [p for p in graph.modules if _phase_test_files(phase, p)]
        found: list[tuple[str, list[str]]] = []
        for target in changed:
            if _phase_test_files(phase, target):
                continue  # its own test file: already a test-file reason
            for test in tests:
                chain = graph.path_to(test, target)
                if chain is not None and len(chain) > 1:
                    found.append((target, [test] + [graph.modules.get(p, p) for p in chain[1:]]))
                    break
        if found:
            result[phase.name] = found
    return result, notes


def _short_list(items: list[str]) -> str:
    shown = items[:FILES_PER_REASON]
    return ", ".join(shown) + (f" and {len(items) - len(shown)} more" if len(items) > len(shown) else "")


def recommend(
    phases: PhaseSet, files: list[FileAssessment], rules: RuleSet, impact: _Impact
) -> tuple[list[PhaseRecommendation], list[PhaseSkipped], list[str]]:
    """Phases to run (in order, with reasons) and phases left out (with why)."""
    notes: list[str] = []
    relevant = [f for f in files if not f.ignored]
    if not relevant:
        why = "nothing changed" if not files else "only ignored files changed ([assess] ignore)"
        return [], [PhaseSkipped(phase=p.name, why=why) for p in phases.phases], notes
    docs_only = all({c.category for c in f.categories} == {"docs"} for f in relevant)
    if docs_only:
        notes.append("docs-only change: no phase needs to run")
        return [], [PhaseSkipped(phase=p.name, why="docs-only change") for p in phases.phases], notes

    code_categories: dict[str, list[str]] = {}
    for f in relevant:
        names = [c.category for c in f.categories]  # table order: a set would reorder reasons run to run
        if {"tests", "docs"}.intersection(names):
            continue
        for name in names:
            code_categories.setdefault(name, []).append(f.path)

    recommended: list[PhaseRecommendation] = []
    skipped: list[PhaseSkipped] = []
    for phase in phases.phases:
        reasons: list[Reason] = []
        own_tests = [f.path for f in relevant if _phase_test_files(phase, f.path)]
        if own_tests:
            reasons.append(
                Reason(kind="test-file", text=f"its test files changed: {_short_list(own_tests)}", files=own_tests)
            )
        by_trigger: dict[str, list[str]] = {}
        for f in relevant:
            if f.path in own_tests:
                continue
            glob = glob_match(f.path, phase.triggers) or (
                glob_match(f.old_path, phase.triggers) if f.old_path else None
            )
            if glob is not None:
                by_trigger.setdefault(glob, []).append(f.path)
        for glob, paths in by_trigger.items():
            cats = sorted({c.category for f in relevant if f.path in paths for c in f.categories})
            reasons.append(
                Reason(
                    kind="trigger",
                    text=f"trigger {glob!r} matches {_short_list(paths)}",
                    files=paths,
                    categories=cats,
                )
            )
        for path, chain in impact.go.get(phase.name, []) + impact.py.get(phase.name, []):
            cats = sorted({c.category for f in relevant if f.path == path for c in f.categories})
            reasons.append(
                Reason(
                    kind="import",
                    text=f"{chain[0]} imports {' → '.join(chain[1:])} (changed: {path})",
                    files=[path],
                    categories=cats,
                    import_path=chain,
                )
            )
        # Test file names say what a phase is about only when it has a few of them (not `all`).
        named_files = [PurePosixPath(t).name for t in phase.test_files] if len(phase.test_files) <= 2 else []
        haystack = " ".join([phase.name, phase.description, *named_files]).lower()
        reached = {path for path, _ in impact.go.get(phase.name, []) + impact.py.get(phase.name, [])}
        unrelated: list[str] = []
        for name, paths in code_categories.items():
            keywords = rules.category(name).phase_keywords
            hit = next((k for k in keywords if k.lower() in haystack), None)
            if hit is None:
                continue
            # A name is a hint, the import graph is a fact: a go/pytest phase whose tests import none of
            # the changed files the graph was asked about does not exercise them, whatever it is called.
            related = paths if phase.runner is Runner.COMMAND else [
                p for p in paths if p not in impact.asked or p in reached
            ]  # fmt: skip
            if not related:
                unrelated.append(f"its name says {hit!r} ({name}), but its tests import none of {_short_list(paths)}")
                continue
            how = (
                "its tests import them"
                if any(p in reached for p in related)
                else "a command phase has no import graph, so its name is the only link"
                if phase.runner is Runner.COMMAND
                else "no import graph answered for them"
            )
            reasons.append(
                Reason(
                    kind="category",
                    text=f"{name} changes in {_short_list(related)}; the phase is about {hit!r} and {how}",
                    files=related,
                    categories=[name],
                )
            )
        if reasons:
            recommended.append(
                PhaseRecommendation(
                    phase=phase.name,
                    runner=phase.runner.value,
                    order=phase.order,
                    available=phase.available,
                    note=phase.note,
                    reasons=reasons,
                )
            )
        else:
            skipped.append(PhaseSkipped(phase=phase.name, why="; ".join([_why_not(phase), *unrelated])))
    return recommended, skipped, notes


def _why_not(phase: Phase) -> str:
    parts = ["none of its test files changed"]
    if phase.triggers:
        parts.append(f"no changed file matches its triggers ({', '.join(phase.triggers[:4])})")
    if phase.runner in (Runner.GO, Runner.PYTEST):
        parts.append("its tests import no changed package")
    else:
        parts.append("a command phase has no import graph")
    return "; ".join(parts)


# -- the tool ---------------------------------------------------------------------------------


def assess_changes(
    project: Project,
    base: str | None = None,
    head: str | None = None,
    *,
    include_worktree: bool = True,
    import_graph: bool = True,
    max_files: int = DEFAULT_MAX_FILES,
) -> Assessment:
    """Assess the change from `base` to `head`: files, categories with evidence, phases to run and why."""
    raw = load_raw_config(project)
    rules = load_rules(raw)
    # Each file is classified as soon as its patch has streamed by, while git diffs the next ones, and
    # phase discovery walks the project meanwhile: all three would otherwise wait on one another.
    early: dict[str, tuple[FileLines | None, _Hits | None, str | None]] = {}

    def on_file(path: str, lines: FileLines | None) -> None:
        language = language_of(path)
        early[path] = (lines, _classify_unless_ignored(path, lines, rules, language), language)

    with ThreadPoolExecutor(max_workers=1) as pool:
        phases_future = pool.submit(load_phases, project)
        try:
            changeset, kept = scan_changes(
                project, base, head, include_worktree=include_worktree, keep_lines=True, on_file=on_file
            )
        except BaseException:
            phases_future.result()  # a phase config error is reported first, as when this ran in sequence
            raise
        phases = phases_future.result()
    locator = _Locator(project)
    files = []
    for changed in changeset.files:
        lines = kept.get(changed.path)
        seen = early.get(changed.path)
        # Early hits hold only when they read the same lines this file ends with (binary: none).
        if seen is not None and seen[0] is (None if changed.binary else lines):
            files.append(_assess_file(changed, lines, rules, locator, seen[1], seen[2]))
        else:
            files.append(_assess_file(changed, lines, rules, locator))

    _add_whole_file_categories(project, files, rules, changeset)

    impact = _Impact()
    graph_notes: list[str] = []
    if import_graph:
        impact.go, notes = _go_impact(project, phases, files, changeset, impact.asked)
        graph_notes += notes
        impact.py, notes = _py_impact(project, phases, files, impact.asked)
        graph_notes += notes
        if not graph_notes:
            graph_notes.append("import graph not needed: no changed Go package or Python module outside tests")
    else:
        graph_notes.append("import graph skipped (import_graph=false)")
    recommended, skipped, rec_notes = recommend(phases, files, rules, impact)
    categories = _summaries(files, rules)
    risk = [f"{c.category}: {c.risk} ({_where(c)})" for c in categories]

    totals = Totals(files=len(files), added=sum(f.added for f in files), removed=sum(f.removed for f in files))
    return Assessment(
        summary=_summary(changeset, totals, categories, recommended, rec_notes),
        base=changeset.base,
        base_label=changeset.base_label,
        base_reason=changeset.base_reason,
        head=changeset.head,
        head_label=changeset.head_label,
        include_worktree=changeset.include_worktree,
        totals=totals,
        files=files[:max_files],
        files_omitted=max(0, len(files) - max_files),
        categories=categories,
        risk=risk,
        recommended=recommended,
        not_recommended=skipped,
        import_graph=graph_notes,
        notes=changeset.notes + rec_notes + _truncation_notes(files),
    )


def _classify_unless_ignored(
    path: str, lines: FileLines | None, rules: RuleSet, language: str | None = None
) -> _Hits | None:
    """The file's hits, or None when it matches `[assess] ignore`."""
    if rules.ignore and glob_match(path, rules.ignore) is not None:
        return None
    return classify_file(path, language or language_of(path), lines, rules)


def _assess_file(
    changed: ChangedFile,
    lines: FileLines | None,
    rules: RuleSet,
    locator: _Locator,
    hits: _Hits | None = None,
    language: str | None = None,
) -> FileAssessment:
    """One file's assessment; `hits` (with its `language`) when it was classified as its patch streamed by."""
    if language is None:
        language = language_of(changed.path)
    if hits is None:
        hits = _classify_unless_ignored(changed.path, None if changed.binary else lines, rules, language)
    ignored = hits is None
    categories: list[FileCategory] = []
    if hits is not None:
        order = list(rules.categories)
        for name in sorted(hits.findings, key=lambda n: (order.index(n) if n in order else len(order), n)):
            categories.append(
                trusted(FileCategory, category=name, findings=hits.findings[name], evidence=hits.evidence.get(name, []))
            )
    return trusted(
        FileAssessment,
        path=changed.path,
        old_path=changed.old_path,
        status=changed.status,
        added=changed.added,
        removed=changed.removed,
        binary=changed.binary,
        ranges=list(changed.ranges),
        language=language,
        go_package=locator.go_package(changed.path) if language == "go" else None,
        python_module=locator.python_module(changed.path) if language == "python" else None,
        categories=categories,
        ignored=ignored,
        lines_truncated=bool(lines and lines.truncated),
    )


CODE_LANGUAGES = frozenset({"go", "python", "shell", "ruby"} | (C_LIKE - {"css", "protobuf"}))
"""Languages whose files can make their package a client of something (a README naming a host does not)."""


def _is_test_path(path: str) -> bool:
    name = path.rpartition("/")[2]
    return (
        name.endswith(("_test.go", "_test.py"))
        or (name.startswith("test_") and name.endswith(".py"))
        or (name == "conftest.py")
    )


def _add_whole_file_categories(
    project: Project, files: list[FileAssessment], rules: RuleSet, changeset: ChangeSet
) -> None:
    """Give each changed source file the categories of the `whole_file` rules its content or package matches.

    The changed lines of a retry tweak in a GitHub client name nothing of GitHub, yet the change is to
    the GitHub client: the file (or another non-test file of its folder) holds the API host, media type or
    client library. Test files neither get nor give the category: a fixture URL does not make a client.
    """
    from .folder_grep import grep_folders

    wanted = rules.whole_file_rules
    candidates = [
        f
        for f in files
        if not f.ignored and f.status != "deleted" and f.language in CODE_LANGUAGES and not _is_test_path(f.path)
    ]
    rev = None if changeset.include_worktree else changeset.head or None
    if not wanted or not candidates or (rev is None and not changeset.include_worktree):
        return
    needles = {n for c in wanted for n in (c.needles or ("",))}
    folders = sorted({f.path.rpartition("/")[0] for f in candidates})
    # path → category → (rule id, line, matched text): the first hit of each category in each file.
    found: dict[str, dict[str, tuple[str, int, str]]] = {}
    for hit in grep_folders(project, folders, sorted(needles), rev):
        language = language_of(hit.path)
        if language not in CODE_LANGUAGES or _is_test_path(hit.path):
            continue
        views = _Stripper(language).views(hit.text, hit.line)
        per_file = found.setdefault(hit.path, {})
        for compiled in wanted:
            category = compiled.rule.category
            if category in per_file or (compiled.languages and language not in compiled.languages):
                continue
            if not compiled.path_applies(hit.path):
                continue
            assert compiled.regex is not None
            if compiled.scope == "import":
                subjects = _imports_of(language, hit.text) if views.code.strip() else []
            else:
                subjects = [hit.text if compiled.scope == "any" else views.code_strings if
                            compiled.scope == "code+strings" else views.code]  # fmt: skip
            match = next((m for m in map(compiled.regex.search, subjects) if m is not None), None)
            if match is not None:
                per_file[category] = (compiled.rule.id, hit.line, match.group(0))
    order = list(rules.categories)
    for f in candidates:
        have = {c.category for c in f.categories}
        folder = f.path.rpartition("/")[0]
        own = found.get(f.path, {})
        siblings = sorted(p for p in found if p != f.path and p.rpartition("/")[0] == folder)
        added = False
        for category in order + sorted({c for hits in found.values() for c in hits} - set(order)):
            if category in have:
                continue
            title = rules.category(category).title or category
            if category in own:
                rule_id, line, matched = own[category]
                text = f"the file is {title} code: its line {line} holds {matched!r}"
            else:
                source = next((p for p in siblings if category in found[p]), None)
                if source is None:
                    continue
                rule_id, line, matched = found[source][category]
                kind = (
                    "package" if f.language == "go" or (project.root / folder / "__init__.py").is_file() else ("folder")
                )
                text = f"its {kind} {folder or '.'} is {title} code: {source}:{line} holds {matched!r}"
            evidence = Evidence(file=f.path, line=None, text=text, match=matched[:80], rule=rule_id)
            f.categories.append(FileCategory(category=category, findings=1, evidence=[evidence]))
            added = True
        if added:
            f.categories.sort(
                key=lambda c: (order.index(c.category) if c.category in order else len(order), c.category)
            )


def _summaries(files: list[FileAssessment], rules: RuleSet) -> list[CategorySummary]:
    per: dict[str, tuple[int, int, list[Evidence]]] = {}
    for f in files:
        for c in f.categories:
            count, findings, examples = per.get(c.category, (0, 0, []))
            room = EXAMPLES_PER_CATEGORY - len(examples)
            per[c.category] = (count + 1, findings + c.findings, examples + c.evidence[: max(0, room)])
    order = list(rules.categories)
    out: list[CategorySummary] = []
    for name in sorted(per, key=lambda n: (order.index(n) if n in order else len(order), n)):
        count, findings, examples = per[name]
        category = rules.category(name)
        out.append(
            CategorySummary(
                category=name,
                title=category.title or name,
                files=count,
                findings=findings,
                risk=category.risk or f"{name} changed",
                examples=examples,
            )
        )
    return out


def _where(summary: CategorySummary) -> str:
    plural = "s" if summary.files != 1 else ""
    first = summary.examples[0] if summary.examples else None
    at = ""
    if first is not None:
        at = f", e.g. {first.file}:{first.line}" if first.line is not None else f", e.g. {first.file}"
    return f"{summary.findings} finding{'s' if summary.findings != 1 else ''} in {summary.files} file{plural}{at}"


def uncommitted_only(base: str | None, head: str, head_label: str, include_worktree: bool) -> str | None:
    """ "the uncommitted changes on HEAD (master)" when the range is the working tree against HEAD, else None."""
    if base is None or base != head or not include_worktree:
        return None
    return f"the uncommitted changes on {head_label.removesuffix(' + working tree')}"


def describe_range(assessment: Assessment) -> str:
    """The range in words, each part said once: its base (as chosen, with why) .. its head."""
    a = assessment
    only = uncommitted_only(a.base, a.head, a.head_label, a.include_worktree)
    if only is not None:
        # The base is HEAD itself: the tip of the default branch, or given so.
        return only + (f", against {a.base_label} as given" if a.base_reason.endswith("(given)") else "")
    # The reason names the base already ("merge-base with master (fd849c65d888)", "main (given)").
    return f"{a.base_reason or a.base_label} .. {a.head_label}"


def _summary(
    changeset: ChangeSet,
    totals: Totals,
    categories: list[CategorySummary],
    recommended: list[PhaseRecommendation],
    notes: list[str],
) -> str:
    span = (
        uncommitted_only(changeset.base, changeset.head, changeset.head_label, changeset.include_worktree)
        or f"{changeset.base_label}..{changeset.head_label}"
    )
    if not totals.files:
        return f"no changes in {span}: nothing to run"
    head = (
        f"{totals.files} file{'s' if totals.files != 1 else ''} changed (+{totals.added}/-{totals.removed}) in {span}"
    )
    cats = ", ".join(c.category for c in categories) or "none"
    if any(n.startswith("docs-only") for n in notes):
        return f"{head}; docs-only change: no phase needs to run"
    run = ", ".join(r.phase for r in recommended) or "none"
    return f"{head}; categories: {cats}; run: {run}"


def _truncation_notes(files: list[FileAssessment]) -> list[str]:
    cut = [f.path for f in files if f.lines_truncated]
    if not cut:
        return []
    return [f"only the first changed lines of {_short_list(cut)} were classified (very large diff)"]
