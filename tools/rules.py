"""The change-classification rules as data, and their `[assess]` overrides from `itest.toml`.

A rule fires on a changed file's path (`paths` globs) and/or on its changed lines
(`pattern`, a regular expression). `scope` says which part of a line the pattern
sees, so look-alikes do not fire:

- ``code``: code with comments removed and string contents blanked (`go func()` in a
  comment or in "a string" is not a goroutine);
- ``code+strings``: comments removed, strings kept (URLs and header names live in strings);
- ``import``: only import paths (`"net/http"` in a Go import block, `import httpx`);
- ``any``: the raw line.

Speed without changing answers: each pattern's "needles" (lower-case literals one of which
every match must hold, read from the regex's own parse tree) are looked up with plain
substring tests, and a rule's regex runs only on lines holding one of them; a pattern with
no such literal simply runs on every line.

Globs: a pattern without '/' matches the file name anywhere; with '/' it matches the
whole project-relative path, `**` any number of folders, `*` within one folder.

Override in `itest.toml`::

    [assess]
    disable = ["network.dns"]                 # drop built-in rules by id
    ignore = ["gen/**", "*.pb.go"]            # files listed but never classified

    [[assess.rules]]                          # add a rule, or replace one with the same id
    id = "github-api.our-client"
    category = "github-api"                   # a built-in category or one declared under [assess.categories]
    paths = ["internal/gh/**"]

    [assess.categories.network]               # retune a category (or define a new one)
    risk = "talks to the network: run the edge-case phase"
    phase_keywords = ["network", "edge"]
"""

from __future__ import annotations

import fnmatch
import importlib
import re
from functools import lru_cache
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from .config import RawConfig, check_regex, validate_section
from .models import Model

Scope = Literal["code", "code+strings", "import", "any"]


class Rule(Model):
    """One classification rule: path globs and/or a line pattern, for a category."""

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,79}$")
    category: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")
    description: str = ""
    paths: list[str] = Field(default_factory=list)
    """Globs; with no `pattern`, a matching path is the finding. With a `pattern`, they limit where it looks."""
    exclude: list[str] = Field(default_factory=list)
    pattern: str | None = None
    languages: list[str] = Field(default_factory=list)
    """Languages whose lines the pattern reads (empty: every text file)."""
    scope: Scope = "code"
    whole_file: bool = False
    """Also read the whole content of each changed file and of the other non-test files in its folder (its Go
    package or Python package): a match there gives the changed file the category even when its changed
    lines do not match (a retry tweak in a GitHub client is a change to the GitHub client)."""
    flags: str = ""
    """Regex flags: "i" for case-insensitive."""

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        return check_regex("pattern", value)

    @field_validator("flags")
    @classmethod
    def _flags(cls, value: str) -> str:
        if set(value) - {"i"}:
            raise ValueError(f"flags {value!r}: only 'i' (case-insensitive) is supported")
        return value

    @model_validator(mode="after")
    def _something(self) -> Rule:
        if not self.paths and self.pattern is None:
            raise ValueError(f"rule {self.id!r} needs 'paths' or 'pattern' (or both)")
        if self.whole_file and self.pattern is None:
            raise ValueError(f"rule {self.id!r}: whole_file reads file content, so it needs a 'pattern'")
        return self


class Category(Model):
    """What a category means, its one-line risk, and words that tie it to phases."""

    title: str = ""
    risk: str = ""
    phase_keywords: list[str] = Field(default_factory=list)
    """A phase whose name or test files contain one of these is recommended when the category fires in code."""


class AssessConfig(Model):
    """The `[assess]` section of itest.toml."""

    rules: list[Rule] = Field(default_factory=list)
    disable: list[str] = Field(default_factory=list)
    ignore: list[str] = Field(default_factory=list)
    categories: dict[str, Category] = Field(default_factory=dict)


# -- the built-in table -----------------------------------------------------------------------

CATEGORIES: dict[str, Category] = {
    "github-api": Category(
        title="GitHub API client",
        risk="GitHub API calls changed: auth, pagination and rate limits can break against the real API "
        "(validate_github_api)",
        phase_keywords=["api", "github", "client"],
    ),
    "network": Category(
        title="network",
        risk="network code changed: timeouts, transports and error paths need the network edge-case phases",
        phase_keywords=["network", "edge", "timeout"],
    ),
    "retry": Category(
        title="retry/backoff",
        risk="retry or backoff logic changed: check 5xx/429 handling, Retry-After and give-up paths",
        phase_keywords=["retry", "network", "flaky", "edge"],
    ),
    "concurrency": Category(
        title="concurrency",
        risk="concurrent code changed: run with -race; data races and deadlocks show up only under load",
        phase_keywords=["race", "concurren", "parallel", "sync"],
    ),
    "orchestration": Category(
        title="sync/workflow orchestration",
        risk="sync or workflow orchestration changed: ordering, partial failure and resumption paths",
        phase_keywords=["sync", "workflow", "race", "orchestr"],
    ),
    "config": Category(
        title="configuration",
        risk="configuration or dependencies changed: defaults and environment handling affect every phase",
        phase_keywords=[],
    ),
    "ci": Category(
        title="CI workflow",
        risk="CI or build definitions changed: the same phases may run differently in CI",
        phase_keywords=[],
    ),
    "tests": Category(
        title="tests",
        risk="tests changed: run the phases that own them",
        phase_keywords=[],
    ),
    "docs": Category(
        title="docs",
        risk="documentation only: no behaviour change",
        phase_keywords=[],
    ),
}

GO = ["go"]
PY = ["python"]
GO_PY = ["go", "python"]

BUILTIN_RULES: tuple[Rule, ...] = tuple(
    Rule.model_validate(r)
    for r in [
        # GitHub API client
        # The rules marked whole_file name GitHub itself (its hosts, media type, version header and client
        # libraries), so a file holding one anywhere is a GitHub API client.
        {"id": "github-api.host", "category": "github-api", "pattern": r"api\.github\.com|uploads\.github\.com",
         "scope": "code+strings", "description": "the GitHub API host", "whole_file": True},
        {"id": "github-api.go-import", "category": "github-api", "scope": "import", "languages": GO,
         "pattern": r"github\.com/google/go-github|github\.com/shurcooL/githubv4|github\.com/cli/go-gh",
         "whole_file": True},
        {"id": "github-api.go-oauth2", "category": "github-api", "scope": "import", "languages": GO,
         "pattern": r"golang\.org/x/oauth2", "description": "OAuth2 tokens (GitHub's among others)"},
        {"id": "github-api.py-import", "category": "github-api", "scope": "import", "languages": PY,
         "pattern": r"^(github|githubkit|ghapi|octokit|gidgethub|agithub)(\.|$)", "whole_file": True},
        {"id": "github-api.media-type", "category": "github-api", "scope": "code+strings", "flags": "i",
         "pattern": r"X-GitHub-Api-Version|application/vnd\.github", "whole_file": True},
        {"id": "github-api.octokit", "category": "github-api", "scope": "code+strings",
         "pattern": r"@octokit/|\boctokit\b", "flags": "i"},
        {"id": "github-api.gh-cli", "category": "github-api", "scope": "code+strings",
         "pattern": r"(?:^|[\s\"'`\[(,])gh\s+(api|pr|run|workflow|release|repo|issue|auth)\b|"
                    r"exec\.Command(?:Context)?\([^)]*\"gh\""},
        {"id": "github-api.auth-header", "category": "github-api", "scope": "code+strings",
         "pattern": r"Authorization\"?\s*[:,]\s*\"?(?:token|Bearer)\b|\"(?:token|Bearer) \"\s*\+|"
                    r"f?[\"'](?:token|Bearer) \{"},
        {"id": "github-api.rate-limit", "category": "github-api", "scope": "code+strings", "flags": "i",
         "pattern": r"x-ratelimit-(?:remaining|reset|limit|used|resource)|x-github-request-id"},
        {"id": "github-api.env", "category": "github-api", "scope": "code+strings",
         "pattern": r"\bGITHUB_(?:TOKEN|API_URL|GRAPHQL_URL)\b|\bGH_TOKEN\b"},
        # network
        {"id": "network.go-import", "category": "network", "scope": "import", "languages": GO,
         "pattern": r"^(net|net/http|net/http/httptrace|net/url|crypto/tls|google\.golang\.org/grpc)(/|$)"},
        {"id": "network.py-import", "category": "network", "scope": "import", "languages": PY,
         "pattern": r"^(requests|httpx|aiohttp|urllib3|urllib\.request|http\.client|socket|ssl|grpc|websockets)"
                    r"(\.|$)"},
        {"id": "network.go-client", "category": "network", "scope": "code", "languages": GO,
         "pattern": r"\bhttp\.(Client|Transport|NewRequest(?:WithContext)?|Get|Post|Do|DefaultClient|"
                    r"DefaultTransport|Server|ListenAndServe)\b|\bnet\.(Dial\w*|Dialer|Resolver|Listen\w*|"
                    r"LookupHost|LookupIP)\b|\btls\.Config\b|\bgrpc\.\w+"},
        {"id": "network.go-timeouts", "category": "network", "scope": "code", "languages": GO,
         "pattern": r"\b(Timeout|IdleConnTimeout|TLSHandshakeTimeout|ResponseHeaderTimeout|"
                    r"ExpectContinueTimeout|KeepAlive|MaxIdleConns\w*|DialContext)\s*[:=]|"
                    r"context\.WithTimeout|context\.WithDeadline|SetDeadline|SetReadDeadline"},
        {"id": "network.py-client", "category": "network", "scope": "code", "languages": PY,
         "pattern": r"\b(requests|httpx|aiohttp)\.\w+|\bsocket\.\w+|\burlopen\(|\bHTTPConnection\b|"
                    r"\btimeout\s*=|ClientSession\(|AsyncClient\("},
        {"id": "network.dns", "category": "network", "scope": "code",
         "pattern": r"\bLookup(Host|IP|Addr|SRV|TXT|CNAME)\b|getaddrinfo|gethostbyname|\bResolver\b"},
        # retry/backoff
        {"id": "retry.words", "category": "retry", "scope": "code", "flags": "i",
         "pattern": r"retr(y|ies|ied|ying)\w*|backoff\w*|\bmax_?attempts\b|\bjitter\w*|"
                    r"\bexponential\w*|\battempts?\b"},
        {"id": "retry.retry-after", "category": "retry", "scope": "code+strings", "flags": "i",
         "pattern": r"retry-after|http\.StatusTooManyRequests|\b429\b|StatusServiceUnavailable"},
        {"id": "retry.libraries", "category": "retry", "scope": "import",
         "pattern": r"cenkalti/backoff|avast/retry-go|hashicorp/go-retryablehttp|^tenacity|^backoff(\.|$)|"
                    r"^retrying|urllib3\.util\.retry"},
        # concurrency
        {"id": "concurrency.goroutine", "category": "concurrency", "scope": "code", "languages": GO,
         "pattern": r"(?:^|[\s;{])go\s+(?:func\b|[\w.]+\()"},
        {"id": "concurrency.go-sync", "category": "concurrency", "scope": "code", "languages": GO,
         "pattern": r"\bsync\.(Mutex|RWMutex|WaitGroup|Once|Cond|Map|Pool)\b|\batomic\.\w+|"
                    r"\berrgroup\.\w+|\bsemaphore\.\w+|\.(Lock|Unlock|RLock|RUnlock)\(\)|"
                    r"\bchan\s+[\w*\[\]]|<-\s*\w|\bselect\s*\{|\bmake\(\s*chan\b"},
        {"id": "concurrency.go-import", "category": "concurrency", "scope": "import", "languages": GO,
         "pattern": r"^(sync|sync/atomic|golang\.org/x/sync/\w+)$"},
        {"id": "concurrency.py", "category": "concurrency", "scope": "code", "languages": PY,
         "pattern": r"\basyncio\.\w+|\bthreading\.\w+|\bThreadPoolExecutor\b|\bProcessPoolExecutor\b|"
                    r"\bmultiprocessing\.\w+|\banyio\.\w+|\bLock\(\)|\bSemaphore\(|\bawait\s+asyncio\.gather|"
                    r"\bconcurrent\.futures\b"},
        {"id": "concurrency.py-import", "category": "concurrency", "scope": "import", "languages": PY,
         "pattern": r"^(asyncio|threading|multiprocessing|concurrent\.futures|anyio|trio)(\.|$)"},
        # sync / workflow orchestration
        {"id": "orchestration.paths", "category": "orchestration",
         "paths": ["**/sync/**", "**/*sync*/**", "**/workflow*/**", "**/orchestr*/**", "**/scheduler/**",
                   "**/pipeline/**", "*sync*.go", "*sync*.py", "*workflow*.go", "*workflow*.py"],
         "exclude": ["*_test.go", "test_*.py", "*_test.py"]},
        {"id": "orchestration.code", "category": "orchestration", "scope": "code", "languages": GO_PY,
         "pattern": r"\b(Sync|Reconcile|Orchestrat|Schedul|Workflow|Pipeline|Dispatch)\w*\s*\(|"
                    r"\bfunc\s+\([^)]*\)\s+(Sync|Reconcile|Run|Schedule|Dispatch)\w*\("},
        # configuration
        {"id": "config.files", "category": "config",
         "paths": ["*.toml", "*.ini", "*.cfg", "*.env", ".env*", "go.mod", "go.sum", "requirements*.txt",
                   "setup.py", "Dockerfile", "*.dockerfile", "docker-compose*.yml", "docker-compose*.yaml",
                   "config/**", "configs/**", "*.yaml", "*.yml", "*.json"],
         "exclude": [".github/**", "package-lock.json", "*.lock"]},
        {"id": "config.env-flags", "category": "config", "scope": "code", "languages": GO_PY,
         "pattern": r"\bos\.(Getenv|LookupEnv|Setenv)\b|\bos\.environ\b|\bos\.getenv\b|\bflag\.\w+\(|"
                    r"\bviper\.\w+|\bpflag\.\w+|\bargparse\.\w+"},
        # CI workflows and build definitions
        {"id": "ci.workflows", "category": "ci",
         "paths": [".github/workflows/**", ".github/actions/**", ".gitlab-ci.yml", ".circleci/**", "Jenkinsfile",
                   "azure-pipelines.yml", ".buildkite/**", ".travis.yml"]},
        {"id": "ci.build", "category": "ci",
         "paths": ["Makefile", "*.mk", "magefile.go", "magefiles/**", ".mage.yaml", ".goreleaser.yml",
                   ".goreleaser.yaml", "Taskfile.yml", "justfile", "noxfile.py", "tox.ini"]},
        # tests
        {"id": "tests.files", "category": "tests",
         "paths": ["*_test.go", "test_*.py", "*_test.py", "conftest.py", "**/testdata/**", "test/**", "tests/**",
                   "**/test/**", "**/tests/**"]},
        # docs
        {"id": "docs.files", "category": "docs",
         "paths": ["*.md", "*.markdown", "*.rst", "*.adoc", "*.txt", "docs/**", "doc/**", "LICENSE*", "COPYING*",
                   "AUTHORS*", "CHANGELOG*", "NOTICE*", "*.png", "*.svg", "*.jpg", "*.gif"],
         "exclude": ["requirements*.txt", "CMakeLists.txt", "go.sum"]},
    ]
)  # fmt: skip


# -- compiled form ----------------------------------------------------------------------------


@lru_cache(maxsize=1024)
def glob_regex(glob: str) -> re.Pattern[str]:
    """The regex for one glob (see the module docstring for the matching rules)."""
    if "/" not in glob:
        return re.compile(fnmatch.translate(glob).replace("(?s:", "(?s:(?:.*/)?", 1))
    parts: list[str] = []
    i = 0
    while i < len(glob):
        if glob.startswith("**/", i):
            parts.append("(?:.*/)?")
            i += 3
        elif glob.startswith("**", i):
            parts.append(".*")
            i += 2
        elif glob[i] == "*":
            parts.append("[^/]*")
            i += 1
        elif glob[i] == "?":
            parts.append("[^/]")
            i += 1
        else:
            parts.append(re.escape(glob[i]))
            i += 1
    return re.compile("(?s:" + "".join(parts) + r")\Z")


class _GlobSet:
    """Several globs as one regex, plus the literals one of which any matching path holds."""

    __slots__ = ("regex", "needles", "any_needle")

    def __init__(self, globs: tuple[str, ...]) -> None:
        self.regex = re.compile("|".join(f"(?:{glob_regex(g).pattern})" for g in globs))
        needles: set[str] = set()
        for glob in globs:
            found = literal_needles(glob_regex(glob).pattern)
            if found is None:
                self.needles: tuple[str, ...] | None = None
                self.any_needle: re.Pattern[str] | None = None
                return
            needles |= found
        self.needles = _shortest(needles)
        # Only "is any needle there" is asked, so one alternation answers it (overlaps do not matter).
        self.any_needle = re.compile("|".join(re.escape(n) for n in self.needles)) if self.needles else None

    def matches(self, path: str) -> bool:
        """Whether one of the globs matches `path`."""
        return self.may_match(path) and self.regex.match(path) is not None

    def may_match(self, path: str) -> bool:
        """False when no glob can match (no needle in the path); True means: ask the regex."""
        if self.any_needle is None or not path.isascii():
            return True
        return self.any_needle.search(path.lower()) is not None


@lru_cache(maxsize=1024)
def glob_set(globs: tuple[str, ...]) -> _GlobSet:
    """The compiled form of a tuple of globs (cached)."""
    return _GlobSet(globs)


def any_glob(path: str, globs: tuple[str, ...]) -> bool:
    """Whether one of `globs` matches `path`."""
    return bool(globs) and glob_set(globs).matches(path)


def glob_match(path: str, globs: list[str]) -> str | None:
    """The first glob that matches `path`, or None."""
    if not globs or not any_glob(path, tuple(globs)):
        return None
    for glob in globs:
        if glob_regex(glob).match(path):
            return glob
    return None


# -- literal needles: a cheap necessary condition for a rule's regex ------------------------------

_sre_parser: Any
_sre_constants: Any
try:  # the stdlib's own regex parser (private, so it may move): without it every rule runs on every line
    _sre_parser = importlib.import_module("re._parser")
    _sre_constants = importlib.import_module("re._constants")
except ImportError:  # pragma: no cover - other Pythons
    _sre_parser = _sre_constants = None

_MAX_NEEDLES = 64


def _needles_of(items: Any) -> frozenset[str] | None:
    """Lower-case ASCII strings one of which every match of the parsed sequence `items` contains."""
    c = _sre_constants
    repeats = {c.MAX_REPEAT, c.MIN_REPEAT, getattr(c, "POSSESSIVE_REPEAT", c.MAX_REPEAT)}
    best: frozenset[str] | None = None
    best_key = (0, 0)

    def consider(candidate: frozenset[str] | None) -> None:
        nonlocal best, best_key
        if not candidate or len(candidate) > _MAX_NEEDLES:
            return
        key = (min(len(n) for n in candidate), -len(candidate))
        if key[0] > 0 and (best is None or key > best_key):
            best, best_key = candidate, key

    run: list[str] = []
    for op, av in items:
        if op is c.LITERAL and av < 128:
            run.append(chr(av).lower())
            continue
        if run:
            consider(frozenset({"".join(run)}))
            run = []
        sub: frozenset[str] | None = None
        if op is c.SUBPATTERN:
            sub = _needles_of(av[-1])
        elif op is c.ATOMIC_GROUP:
            sub = _needles_of(av)
        elif op in repeats:
            sub = _needles_of(av[2]) if av[0] >= 1 else None
        elif op is c.BRANCH:
            parts = [_needles_of(branch) for branch in av[1]]
            known = [part for part in parts if part is not None]
            if len(known) == len(parts):
                sub = frozenset().union(*known)
        consider(sub)
    if run:
        consider(frozenset({"".join(run)}))
    return best


def _shortest(needles: set[str] | frozenset[str]) -> tuple[str, ...]:
    """The needles that hold no other needle (a needle holding another one adds nothing to the test)."""
    return tuple(sorted(n for n in needles if not any(m != n and m in n for m in needles)))


@lru_cache(maxsize=1024)
def literal_needles(pattern: str, flags: int = 0) -> frozenset[str] | None:
    """Lower-case ASCII strings one of which every match of `pattern` holds (None: no such set).

    Sound for ASCII text compared lower-cased: literals of the pattern are kept only when ASCII, and
    every alternative of a branch must contribute; anything the walk does not know gives None.
    """
    if _sre_parser is None:
        return None
    try:
        return _needles_of(_sre_parser.parse(pattern, flags))
    except Exception:  # noqa: BLE001 - an unexpected parse tree only costs speed
        return None


class CompiledRule:
    """A rule ready to run: its regex compiled once, and the literals one of which any match contains."""

    __slots__ = ("rule", "regex", "languages", "needles", "needle_set", "restricted", "scope", "exclude", "paths")

    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        flags = re.IGNORECASE if "i" in rule.flags else 0
        self.regex = re.compile(rule.pattern, flags) if rule.pattern is not None else None
        self.languages = frozenset(rule.languages)
        self.scope = rule.scope
        needles = literal_needles(rule.pattern, flags) if rule.pattern is not None else None
        self.needles = _shortest(needles) if needles else None
        self.needle_set = frozenset(self.needles) if self.needles else None
        self.restricted = bool(rule.paths or rule.exclude)
        self.exclude = glob_set(tuple(rule.exclude)) if rule.exclude else None
        self.paths = glob_set(tuple(rule.paths)) if rule.paths else None

    def path_applies(self, path: str) -> bool:
        """Whether the rule looks at this file at all (paths as a limit, minus excludes)."""
        if self.exclude is not None and self.exclude.matches(path):
            return False
        if self.paths is not None and self.regex is not None:
            return self.paths.matches(path)
        return True


class LanguageRules:
    """The line rules for one language, with every needle they have (for a one-pass test of a file)."""

    __slots__ = ("rules", "restricted", "needles", "memo", "needle_rules", "open_rules")

    def __init__(self, rules: list[CompiledRule]) -> None:
        self.rules = rules
        # needle → positions of the rules it belongs to; rules without needles are always live.
        self.needle_rules: dict[str, tuple[int, ...]] = {}
        for index, compiled in enumerate(rules):
            for needle in compiled.needles or ():
                self.needle_rules[needle] = (*self.needle_rules.get(needle, ()), index)
        self.open_rules = tuple(i for i, c in enumerate(rules) if c.needles is None)
        self.memo: dict[str, tuple[tuple[CompiledRule, str], ...]] = {}
        """Line text → its hits under these rules (filled by the classifier; lives as long as this RuleSet)."""
        self.restricted = any(c.restricted for c in rules)
        self.needles = tuple(sorted({n for c in rules for n in c.needles or ()}))


class RuleSet:
    """The effective rules and categories of a project."""

    def __init__(self, rules: list[Rule], categories: dict[str, Category], ignore: list[str]) -> None:
        self.rules = rules
        self.categories = categories
        self.ignore = ignore
        compiled = [CompiledRule(r) for r in rules]
        self.path_rules = [c for c in compiled if c.regex is None]
        self.line_rules = [c for c in compiled if c.regex is not None]
        self.whole_file_rules = [c for c in self.line_rules if c.rule.whole_file]
        # A path no path rule's glob matches skips the path rules at once.
        path_globs = tuple(g for c in self.path_rules for g in c.rule.paths)
        self.path_rule_globs = path_globs
        self.any_path_rule = glob_set(path_globs) if path_globs else None
        self._by_language: dict[str | None, LanguageRules] = {}

    def line_rules_for(self, path: str, language: str | None, prose: frozenset[str] | set[str]) -> LanguageRules:
        """The line rules that read this file's lines (by language, then by path limits), in table order."""
        found = self._by_language.get(language)
        if found is None:
            found = LanguageRules(
                [c for c in self.line_rules if (language in c.languages if c.languages else language not in prose)]
            )
            self._by_language[language] = found
        if found.restricted:
            return LanguageRules([c for c in found.rules if not c.restricted or c.path_applies(path)])
        return found

    def category(self, name: str) -> Category:
        return self.categories.get(name) or Category(title=name)


def load_rules(raw: RawConfig | None = None) -> RuleSet:
    """The built-in rules with the `[assess]` section of the project's config applied."""
    rules = list(BUILTIN_RULES)
    categories = dict(CATEGORIES)
    ignore: list[str] = []
    if raw is not None and "assess" in raw.data:
        section = raw.section("assess")
        config = validate_section(raw, ("assess",), section, AssessConfig)
        known_ids = {r.id for r in rules}
        for position, rule_id in enumerate(config.disable):
            if rule_id not in known_ids:
                raise raw.error(
                    f"disable[{position}] names no rule: {rule_id!r}; built-in rule ids: "
                    + ", ".join(sorted(known_ids)),
                    ("assess", "disable"),
                )
        rules = [r for r in rules if r.id not in set(config.disable)]
        declared = set(categories) | set(config.categories)
        for position, rule in enumerate(config.rules):
            if rule.category not in declared:
                # A new category must be declared: a typo would otherwise become a category of its own, silently.
                raise raw.error(
                    f"rule {rule.id!r} has category {rule.category!r}, which is not a known category; use one of "
                    + ", ".join(sorted(declared))
                    + f", or declare it under [assess.categories.{rule.category}]",
                    ("assess", "rules", position, "category"),
                )
            rules = [r for r in rules if r.id != rule.id] + [rule]
        for name, override in config.categories.items():
            base = categories.get(name)
            if base is None:
                categories[name] = override.model_copy(update={"title": override.title or name})
            else:
                given = override.model_dump(exclude_unset=True)
                categories[name] = base.model_copy(update=given)
        ignore = list(config.ignore)
    return RuleSet(rules, categories, ignore)
