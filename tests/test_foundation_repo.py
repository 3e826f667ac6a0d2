"""The project model: roots inside larger repositories, path confinement, the state folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import git, init_repo

from itest_mcp.tools.errors import NotAGitRepositoryError, PathOutsideRepoError, RepoError, UnsafeArgumentError
from itest_mcp.tools.repo import ensure_not_option, open_project


def test_subfolder_project_uses_enclosing_git_repository(make_repo):
    repo = make_repo({"services/api/go.mod": "module example.com/api\n", "README.md": "x\n"})
    project = open_project(repo / "services" / "api")
    assert project.root == (repo / "services" / "api").resolve()
    assert project.git_root == repo.resolve()
    assert project.git_prefix == "services/api"
    assert project.git_path_to_project("services/api/internal/x.go") == "internal/x.go"
    assert project.git_path_to_project("README.md") is None
    assert project.head_commit() == git(repo, "rev-parse", "HEAD").strip()


def test_state_folder_is_created_on_demand_and_invisible_to_git(make_repo):
    repo = make_repo({"a.txt": "a\n"})
    project = open_project(repo)
    assert not (repo / ".itest").exists()
    run_dir = project.runs_dir / "r1"
    run_dir.mkdir()
    (run_dir / "output.log").write_text("log\n")
    assert (repo / ".itest" / ".gitignore").read_text().splitlines()[-1] == "*"
    assert git(repo, "status", "--porcelain") == ""
    assert project.is_dirty() is False
    (repo / "a.txt").write_text("changed\n")
    assert project.is_dirty() is True


def test_not_a_git_repository_is_a_clear_error(tmp_path: Path):
    folder = tmp_path / "plain"
    folder.mkdir()
    with pytest.raises(NotAGitRepositoryError, match="is not inside a git repository.*git init"):
        open_project(folder)


def test_repo_pointing_at_a_file_is_refused(make_repo):
    repo = make_repo({"a.txt": "a\n"})
    with pytest.raises(RepoError, match=r"is a file, not a folder"):
        open_project(repo / "a.txt")
    with pytest.raises(RepoError, match="does not exist"):
        open_project(repo / "missing")


@pytest.mark.parametrize(
    ("value", "reason"),
    [("../outside.txt", "'..' leads outside"), ("/etc/passwd", "absolute path outside"), ("sub/../../x", "'..'")],
)
def test_paths_escaping_the_root_are_refused(make_repo, value: str, reason: str):
    project = open_project(make_repo({"sub/a.txt": "a\n"}))
    with pytest.raises(PathOutsideRepoError, match=reason) as info:
        project.resolve_path(value)
    assert repr(value) in str(info.value)


def test_symlink_escaping_the_root_is_refused(make_repo, tmp_path: Path):
    repo = make_repo({"a.txt": "a\n"})
    outside = tmp_path / "secret"
    outside.mkdir()
    os.symlink(outside, repo / "link")
    project = open_project(repo)
    with pytest.raises(PathOutsideRepoError, match="symbolic link"):
        project.resolve_path("link/file.xml")


def test_paths_inside_resolve(make_repo):
    repo = make_repo({"reports/junit.xml": "<x/>"})
    project = open_project(repo)
    assert project.resolve_path("reports/junit.xml") == (repo / "reports" / "junit.xml").resolve()
    assert project.resolve_path(str(repo / "reports")) == (repo / "reports").resolve()
    with pytest.raises(UnsafeArgumentError, match="starts with '-'"):
        project.resolve_path("--output=x")


def test_values_that_look_like_flags_are_refused():
    assert ensure_not_option("ref", "main") == "main"
    with pytest.raises(UnsafeArgumentError, match="ref '--upload-pack=x' starts with '-'"):
        ensure_not_option("ref", "--upload-pack=x")


def test_repository_without_commits_has_no_head(tmp_path: Path):
    repo = init_repo(tmp_path / "empty")
    assert open_project(repo).head_commit() is None
