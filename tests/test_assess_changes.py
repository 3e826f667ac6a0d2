"""assess_changes on the demo copy: each category fires on a real hunk and not on look-alikes; recommendations."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import commit_all, git

from itest_mcp.tools.changes import Assessment, assess_changes
from itest_mcp.tools.errors import ConfigError
from itest_mcp.tools.repo import open_project


def append(repo: Path, rel: str, text: str) -> int:
    """Append `text` to a file and return the line number of its first line."""
    target = repo / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    before = target.read_text(encoding="utf-8").count("\n") if target.exists() else 0
    with target.open("a", encoding="utf-8") as handle:
        handle.write(text)
    return before + 1


def hits(assessment: Assessment, path: str, category: str) -> list[int | None]:
    for f in assessment.files:
        if f.path == path:
            for c in f.categories:
                if c.category == category:
                    return [e.line for e in c.evidence]
    return []


GO_FILE = "internal/ghclient/client.go"
PY_FILE = "demo_client/client.py"

# (category, file, look-alikes (comments/strings), the real line)
CASES = [
    ("github-api", GO_FILE, '// see https://api.github.com for docs\n', 'var apiHost = "https://api.github.com/v3"\n'),
    ("network", GO_FILE, '// http.Transport is set elsewhere\nvar note = "http.Transport{}"\n',
     "var tr = &http.Transport{}\n"),
    ("retry", GO_FILE, '// we never retry here\nvar word = "backoff"\n',
     "func (c *Client) retryDelay(n int) time.Duration { return c.Backoff * time.Duration(n) }\n"),
    ("concurrency", GO_FILE, '// go func() would race\nvar s = "sync.Mutex"\n/* go func() {\n}() */\n',
     "func spawn(ch chan int) { go func() { ch <- 1 }() }\n"),
    ("orchestration", GO_FILE, "// Reconcile(ctx) is not here\n",
     "func (c *Client) Reconcile(ctx context.Context) error { return nil }\n"),
    ("config", GO_FILE, '// os.Getenv is avoided\nvar e = "os.Getenv"\n', 'var home = os.Getenv("HOME")\n'),
    ("network", PY_FILE, '# import httpx\nNOTE = "import httpx"\n"""\nrequests.get(url)\n"""\n', "import httpx\n"),
    ("concurrency", PY_FILE, "# asyncio.gather(...)\nX = 'threading.Lock()'\n", "LOCK = threading.Lock()\n"),
]  # fmt: skip


@pytest.mark.parametrize(("category", "rel", "lookalike", "real"), CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_category_fires_on_real_hunk_not_on_lookalike(
    demo_repo: Path, category: str, rel: str, lookalike: str, real: str
) -> None:
    append(demo_repo, rel, "\n")
    look_line = append(demo_repo, rel, lookalike)
    assessment = assess_changes(open_project(demo_repo), import_graph=False)
    # Only changed lines count here: the demo's client.go is a GitHub client as a whole (evidence without a line).
    on_lines = [line for line in hits(assessment, rel, category) if line is not None]
    assert on_lines == [], f"{category} fired on a look-alike at line {look_line}"
    real_line = append(demo_repo, rel, real)
    assessment = assess_changes(open_project(demo_repo), import_graph=False)
    assert real_line in hits(assessment, rel, category)
    summary = next(c for c in assessment.categories if c.category == category)
    assert summary.risk and any(r.startswith(f"{category}: ") for r in assessment.risk)


@pytest.mark.parametrize(
    ("category", "real", "lookalike"),
    [
        ("ci", ".github/workflows/ci.yml", "docs/github-workflows.yml"),
        ("tests", "internal/ghclient/extra_test.go", "internal/ghclient/testing_helpers.go"),
        ("docs", "docs/guide.md", "internal/ghclient/markdown.go"),
        ("config", "config/app.yaml", ".github/workflows/release.yml"),
    ],
)
def test_path_categories(demo_repo: Path, category: str, real: str, lookalike: str) -> None:
    append(demo_repo, real, "x: 1\n")
    append(demo_repo, lookalike, "package ghclient\n" if lookalike.endswith(".go") else "x: 1\n")
    assessment = assess_changes(open_project(demo_repo), import_graph=False)
    assert hits(assessment, real, category) == [None]
    assert hits(assessment, lookalike, category) == []


def test_github_api_auth_header_and_rate_limit(demo_repo: Path) -> None:
    line = append(demo_repo, GO_FILE, 'func h(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }\n')
    line2 = append(demo_repo, GO_FILE, 'var rl = "X-RateLimit-Remaining"\n')
    assessment = assess_changes(open_project(demo_repo), import_graph=False)
    found = hits(assessment, GO_FILE, "github-api")
    assert line in found and line2 in found


def test_docs_only_recommends_nothing_and_says_so(demo_repo: Path) -> None:
    append(demo_repo, "README.md", "More words.\n")
    append(demo_repo, "docs/design.md", "# Design\ngo func() and http.Client mentioned in prose\n")
    assessment = assess_changes(open_project(demo_repo))
    assert assessment.recommended == []
    assert "docs-only" in assessment.summary
    assert all(s.why == "docs-only change" for s in assessment.not_recommended)
    assert assessment.not_recommended


def test_import_graph_recommends_phases_whose_tests_import_the_package(demo_repo: Path) -> None:
    # sync.go matches no per-file phase trigger; only the import graph ties it to race_test.go.
    append(demo_repo, "internal/reposync/sync.go", "\nfunc helper() int { return 1 }\n")
    assessment = assess_changes(open_project(demo_repo))
    recommended = {r.phase: r for r in assessment.recommended}
    assert "race" in recommended
    imports = [r for r in recommended["race"].reasons if r.kind == "import"]
    assert imports and imports[0].import_path == ["test/integration/race_test.go", "example.com/demo/internal/reposync"]
    skipped = {s.phase: s.why for s in assessment.not_recommended}
    assert "api-client" in skipped and "import no changed package" in skipped["api-client"]
    assert any("Go import graph" in g for g in assessment.import_graph)
    names = [r.phase for r in assessment.recommended]
    assert names.index("race") < names.index("all")  # phase order is kept

    again = assess_changes(open_project(demo_repo))
    assert any("cached" in g for g in again.import_graph)


def test_transitive_go_import_path(demo_repo: Path) -> None:
    append(demo_repo, GO_FILE, "\nfunc unusedHelper() {}\n")
    assessment = assess_changes(open_project(demo_repo))
    race = next(r for r in assessment.recommended if r.phase == "network-edge-cases")
    assert any(r.kind == "import" and r.files == [GO_FILE] for r in race.reasons)
    f = next(f for f in assessment.files if f.path == GO_FILE)
    assert f.go_package == "example.com/demo/internal/ghclient"
    assert f.language == "go"


def test_python_import_graph(demo_repo: Path) -> None:
    append(demo_repo, PY_FILE, "\nEXTRA = 1\n")
    assessment = assess_changes(open_project(demo_repo))
    phase = next(r for r in assessment.recommended if r.phase == "python-integration")
    chain = next(r for r in phase.reasons if r.kind == "import").import_path
    assert chain[0] == "tests/integration/test_repo_client.py"
    assert chain[-1] == "demo_client.client"
    f = next(f for f in assessment.files if f.path == PY_FILE)
    assert f.python_module == "demo_client.client"


def test_test_file_change_recommends_its_phase(demo_repo: Path) -> None:
    append(demo_repo, "test/integration/flaky_test.go", "\nfunc helperFlaky() {}\n")
    assessment = assess_changes(open_project(demo_repo))
    flaky = next(r for r in assessment.recommended if r.phase == "flaky")
    assert flaky.reasons[0].kind == "test-file"
    assert flaky.reasons[0].files == ["test/integration/flaky_test.go"]
    assert "api-client" not in {r.phase for r in assessment.recommended}


def test_without_import_graph_says_so(demo_repo: Path) -> None:
    append(demo_repo, "internal/reposync/sync.go", "\nfunc helper() int { return 1 }\n")
    assessment = assess_changes(open_project(demo_repo), import_graph=False)
    assert assessment.import_graph == ["import graph skipped (import_graph=false)"]
    assert all(r.kind != "import" for rec in assessment.recommended for r in rec.reasons)


def test_committed_branch_range_and_renames(demo_repo: Path) -> None:
    git(demo_repo, "checkout", "-q", "-b", "feature")
    git(demo_repo, "mv", "internal/reposync/sync.go", "internal/reposync/syncer.go")
    commit_all(demo_repo, "rename")
    assessment = assess_changes(open_project(demo_repo))
    assert assessment.base_reason.startswith("merge-base with main")
    f = next(f for f in assessment.files if f.path == "internal/reposync/syncer.go")
    assert f.status == "renamed" and f.old_path == "internal/reposync/sync.go"


def test_empty_range(demo_repo: Path) -> None:
    assessment = assess_changes(open_project(demo_repo), "main", include_worktree=False)
    assert assessment.files == [] and assessment.recommended == []
    assert assessment.summary.startswith("no changes")


def test_assess_config_adds_disables_and_ignores(demo_repo: Path) -> None:
    (demo_repo / "itest.toml").write_text(
        'discover = true\n[assess]\ndisable = ["retry.words"]\nignore = ["gen/**"]\n'
        '[[assess.rules]]\nid = "github-api.ours"\ncategory = "github-api"\npaths = ["internal/reposync/**"]\n'
        '[assess.categories.github-api]\nrisk = "our GitHub client changed"\n',
        encoding="utf-8",
    )
    append(demo_repo, GO_FILE, "\nfunc (c *Client) retryDelay() {}\n")
    append(demo_repo, "internal/reposync/sync.go", "\nfunc helper() {}\n")
    append(demo_repo, "gen/out.go", "package gen\nfunc f() { go func() {}() }\n")
    assessment = assess_changes(open_project(demo_repo), import_graph=False)
    assert hits(assessment, GO_FILE, "retry") == []
    assert hits(assessment, "internal/reposync/sync.go", "github-api") == [None]
    gen = next(f for f in assessment.files if f.path == "gen/out.go")
    assert gen.ignored and gen.categories == []
    assert any(r.startswith("github-api: our GitHub client changed") for r in assessment.risk)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('[assess]\n[[assess.rules]]\nid = "x"\ncategory = "network"\npattern = "(unclosed"\n',
         r"itest\.toml:5 \[assess\.rules\[0\]\.pattern\]: .*'\(unclosed' is not a valid regular expression"),
        # The second [[assess.rules]] entry: its own line and index, not the first entry's.
        ('[assess]\n[[assess.rules]]\nid = "a"\ncategory = "network"\npattern = "x"\n\n'
         '[[assess.rules]]\nid = "b"\ncategory = "network"\npattern = "(bad"\n',
         r"itest\.toml:10 \[assess\.rules\[1\]\.pattern\]: .*'\(bad' is not a valid regular expression"),
        ('[assess]\n[[assess.rules]]\nid = "a"\ncategory = "network"\npattern = "x"\n\n'
         '[[assess.rules]]\nid = "b"\ncategory = "network"\n',
         r"itest\.toml:7 \[assess\.rules\[1\]\]: .*rule 'b' needs 'paths' or 'pattern'"),
        ('[assess]\nunknown = 1\n', r"itest\.toml:2 \[assess\.unknown\]: unknown key 'unknown'"),
        ('[assess]\ndisable = ["no.such.rule"]\n', r"itest\.toml:2 \[assess\.disable\]: .*'no\.such\.rule'"),
        ('[assess]\n[[assess.rules]]\nid = "y"\ncategory = "network"\n',
         r"itest\.toml:2 \[assess\.rules\[0\]\]: .*needs 'paths' or 'pattern'"),
    ],
)  # fmt: skip
def test_assess_config_errors_name_file_key_line(make_repo: Callable[..., Path], body: str, expected: str) -> None:
    repo = make_repo({"itest.toml": body, "a.go": "package a\n"})
    with pytest.raises(ConfigError, match=expected):
        assess_changes(open_project(repo))


def test_offline_assessment_leaves_ci_failures_unlooked(demo_repo: Path) -> None:
    # Filling them is tools/assess_ci.py's job (tests/test_assess_ci.py, against the fake GitHub).
    append(demo_repo, GO_FILE, "\n")
    plain = assess_changes(open_project(demo_repo), import_graph=False)
    assert plain.ci_failures is None


def test_max_files_bounds_the_listing(demo_repo: Path) -> None:
    assessment = assess_changes(open_project(demo_repo), import_graph=False, max_files=3)
    assert len(assessment.files) == 3
    assert assessment.files_omitted == assessment.totals.files - 3 > 0
