"""The diff range on unusual git states: a full sha this clone lacks, and a detached HEAD behind the default
branch's tip. Each is named for what it is, with what to do."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import commit_all, git

from itest_mcp.tools.errors import InputError
from itest_mcp.tools.gitdiff import collect_changes
from itest_mcp.tools.repo import open_project

MISSING = "0" * 40


def test_full_sha_missing_from_the_clone_says_fetch(make_repo: Callable[..., Path]) -> None:
    repo = make_repo({"a.txt": "one\n"})
    with pytest.raises(InputError) as err:
        collect_changes(open_project(repo), base=MISSING)
    message = str(err.value)
    assert f"commit {MISSING} is not in this clone" in message
    assert "git fetch --deepen" in message and "object" not in message


def test_tree_sha_still_named_as_a_tree(make_repo: Callable[..., Path]) -> None:
    repo = make_repo({"a.txt": "one\n"})
    tree = git(repo, "rev-parse", "HEAD^{tree}").strip()
    with pytest.raises(InputError, match=r"names a tree, not a commit"):
        collect_changes(open_project(repo), base=tree)


def test_detached_head_behind_the_default_branch_is_not_called_its_tip(make_repo: Callable[..., Path]) -> None:
    repo = make_repo({"a.txt": "one\n"})
    for n in range(3):
        (repo / "a.txt").write_text(f"one\n{n}\n", encoding="utf-8")
        commit_all(repo, f"c{n}")
    git(repo, "checkout", "-q", "--detach", "main~2")
    cs = collect_changes(open_project(repo))
    assert "is the tip" not in cs.base_reason
    assert "HEAD is 2 commits behind the tip of the default branch main" in cs.base_reason
    assert cs.base_label == "HEAD~1"


def test_head_at_the_tip_is_still_called_the_tip(make_repo: Callable[..., Path]) -> None:
    repo = make_repo({"a.txt": "one\n"})
    (repo / "a.txt").write_text("two\n", encoding="utf-8")
    commit_all(repo, "c1")
    cs = collect_changes(open_project(repo))
    assert "HEAD is the tip of the default branch main" in cs.base_reason
