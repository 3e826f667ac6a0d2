"""A change to a GitHub API client is GitHub API code even when its changed lines name nothing of GitHub,
and a phase is recommended for a category only when its tests can exercise the change."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from conftest import commit_all, git

from itest_mcp.tools.changes import Assessment, FileCategory, assess_changes
from itest_mcp.tools.repo import open_project

CLIENT = "internal/ghclient/client.go"


def category(assessment: Assessment, path: str, name: str) -> FileCategory | None:
    for f in assessment.files:
        if f.path == path:
            return next((c for c in f.categories if c.category == name), None)
    return None


def retry_tweak(demo: Path) -> None:
    """The reviewer's change: a retry path of the demo's GitHub client, naming no GitHub construct."""
    client = demo / CLIENT
    text = client.read_text(encoding="utf-8")
    old = "\t\t\tcase resp.StatusCode >= 500:\n"
    gateway = (
        "\t\t\tcase resp.StatusCode == http.StatusBadGateway || resp.StatusCode == http.StatusGatewayTimeout:\n"
        '\t\t\t\tlastErr = fmt.Errorf("ghclient: %s %s: gateway status %d", method, path, resp.StatusCode)\n'
        "\t\t\t\tif d, ok := retryAfter(resp.Header); ok {\n\t\t\t\t\twait = d\n\t\t\t\t}\n"
    )
    assert old in text
    client.write_text(text.replace(old, gateway + old, 1), encoding="utf-8")


def test_a_retry_change_in_the_github_client_is_github_api_code(demo_repo: Path) -> None:
    git(demo_repo, "checkout", "-q", "-b", "feature")
    retry_tweak(demo_repo)
    commit_all(demo_repo, "retry gateway errors")
    for worktree in (True, False):  # the working tree and the commit's tree give the same answer
        assessment = assess_changes(open_project(demo_repo), "main", include_worktree=worktree)
        found = category(assessment, CLIENT, "github-api")
        assert found is not None, assessment.files
        assert found.evidence[0].line is None and "api.github.com" in found.evidence[0].text
        assert "the file is GitHub API client code" in found.evidence[0].text
        assert [c.category for c in assessment.categories] == ["github-api", "retry"]


def test_a_file_of_a_github_client_package_is_github_api_code(make_repo: Callable[..., Path]) -> None:
    repo = make_repo(
        {
            "go.mod": "module example.com/x\n\ngo 1.22\n",
            "gh/client.go": 'package gh\n\nconst accept = "application/vnd.github+json"\n',
            "gh/retry.go": "package gh\n\nvar attempts = 3\n",
            "gh/client_test.go": 'package gh\n\nconst fixture = "https://api.github.com"\n',
            "other/retry.go": "package other\n\n// talks to api.github.com (in a comment only)\nvar attempts = 3\n",
            "other/other_test.go": 'package other\n\nconst url = "https://api.github.com"\n',
        }
    )
    git(repo, "checkout", "-q", "-b", "work")
    (repo / "gh/retry.go").write_text("package gh\n\nvar attempts = 5\n", encoding="utf-8")
    (repo / "other/retry.go").write_text(
        "package other\n\n// talks to api.github.com (in a comment only)\nvar attempts = 5\n", encoding="utf-8"
    )
    assessment = assess_changes(open_project(repo), "main", import_graph=False)
    found = category(assessment, "gh/retry.go", "github-api")
    assert found is not None
    assert "its package gh is GitHub API client code: gh/client.go:3" in found.evidence[0].text
    # A comment and a test file's fixture URL do not make a GitHub client.
    assert category(assessment, "other/retry.go", "github-api") is None
    assert category(assessment, "other/retry.go", "retry") is not None


def test_a_phase_named_after_a_category_needs_its_tests_to_reach_the_change(demo_repo: Path) -> None:
    """`flaky` was recommended for a retry change because 'flaky' is a retry keyword; its test imports nothing."""
    git(demo_repo, "checkout", "-q", "-b", "feature")
    retry_tweak(demo_repo)
    commit_all(demo_repo, "retry gateway errors")
    assessment = assess_changes(open_project(demo_repo), "main")
    recommended = {r.phase: r for r in assessment.recommended}
    assert "flaky" not in recommended
    why = next(s.why for s in assessment.not_recommended if s.phase == "flaky")
    assert "its name says 'flaky' (retry), but its tests import none of internal/ghclient/client.go" in why
    # A phase whose tests do import the client keeps its category reason, saying so.
    texts = [r.text for r in recommended["network-edge-cases"].reasons if r.kind == "category"]
    assert any("its tests import them" in t for t in texts), texts
