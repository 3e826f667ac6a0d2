"""collect_changes on real repositories: ranges, renames, merges, first commit, binaries, submodules, bad input."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import commit_all, git, init_repo

from itest_mcp.tools.errors import InputError, UnsafeArgumentError
from itest_mcp.tools.gitdiff import RANGES_PER_FILE, collect_changes, scan_changes
from itest_mcp.tools.repo import open_project


def by_path(cs):  # type: ignore[no-untyped-def]
    return {f.path: f for f in cs.files}


def write(repo: Path, rel: str, text: str | bytes) -> None:
    target = repo / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        target.write_bytes(text)
    else:
        target.write_text(text, encoding="utf-8")


def test_first_commit_diffs_against_empty_tree(make_repo: Callable[..., Path]) -> None:
    repo = make_repo({"a.txt": "one\ntwo\nthree\n", "dir/b.go": "package b\n"})
    cs = collect_changes(open_project(repo))
    assert cs.base is None
    assert "first commit" in cs.base_reason
    files = by_path(cs)
    assert files["a.txt"].status == "added"
    assert files["a.txt"].added == 3
    assert [(r.start, r.end) for r in files["a.txt"].ranges] == [(1, 3)]
    assert files["dir/b.go"].ranges[0].end == 1


def test_rename_modify_delete_and_ranges(make_repo: Callable[..., Path]) -> None:
    body = "".join(f"line {i}\n" for i in range(1, 21))
    repo = make_repo({"old name.txt": body, "gone.txt": "bye\n", "m.txt": "a\nb\nc\nd\ne\n"})
    git(repo, "checkout", "-q", "-b", "feature")
    git(repo, "mv", "old name.txt", "new näme.txt")
    write(repo, "new näme.txt", body.replace("line 5\n", "line five\n"))
    (repo / "gone.txt").unlink()
    write(repo, "m.txt", "a\nB\nc\nd\ne\nf\ng\n")
    commit_all(repo, "feature work")
    cs = collect_changes(open_project(repo))
    assert cs.base_reason.startswith("merge-base with main")
    files = by_path(cs)
    renamed = files["new näme.txt"]
    assert renamed.status == "renamed"
    assert renamed.old_path == "old name.txt"
    assert [(r.start, r.end) for r in renamed.ranges] == [(5, 5)]
    assert files["gone.txt"].status == "deleted"
    assert files["gone.txt"].ranges == []
    assert files["gone.txt"].removed == 1
    m = files["m.txt"]
    assert (m.added, m.removed) == (3, 1)
    assert [(r.start, r.end) for r in m.ranges] == [(2, 2), (6, 7)]


def test_merge_history_uses_merge_base(make_repo: Callable[..., Path]) -> None:
    repo = make_repo({"main.txt": "1\n"})
    git(repo, "checkout", "-q", "-b", "feature")
    write(repo, "feature.txt", "f\n")
    commit_all(repo, "feature")
    git(repo, "checkout", "-q", "main")
    write(repo, "main.txt", "1\n2\n")
    commit_all(repo, "main moves on")
    git(repo, "checkout", "-q", "feature")
    git(repo, "merge", "-q", "--no-edit", "main")
    cs = collect_changes(open_project(repo))
    # The merge-base is now main's tip, so only the feature's own work remains.
    assert set(by_path(cs)) == {"feature.txt"}
    assert "merge-base with main" in cs.base_reason


def test_binary_files(make_repo: Callable[..., Path]) -> None:
    repo = make_repo({"img.bin": "x"})
    write(repo, "img.bin", b"\x00\x01\x02" * 100)
    write(repo, "new.bin", b"\x89PNG\x00\x00")
    files = by_path(collect_changes(open_project(repo)))
    assert files["img.bin"].binary and files["img.bin"].status == "binary"
    assert files["img.bin"].ranges == []
    assert files["new.bin"].binary and files["new.bin"].status == "untracked"


def test_submodule(tmp_path: Path, make_repo: Callable[..., Path]) -> None:
    sub = make_repo({"lib.txt": "lib\n"}, name="sublib")
    repo = make_repo({"app.txt": "app\n"}, name="app")
    git(repo, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(sub), "vendor/sublib")
    cs = collect_changes(open_project(repo))
    files = by_path(cs)
    assert files["vendor/sublib"].status == "submodule"
    assert files["vendor/sublib"].ranges == []
    assert files[".gitmodules"].status == "added"


def test_worktree_staged_unstaged_untracked(make_repo: Callable[..., Path]) -> None:
    repo = make_repo({"a.txt": "a\n", "b.txt": "b\n"})
    write(repo, "a.txt", "a\nstaged\n")
    git(repo, "add", "a.txt")
    write(repo, "b.txt", "b\nunstaged\n")
    write(repo, "c.txt", "u1\nu2\nu3")  # no trailing newline: still 3 lines
    cs = collect_changes(open_project(repo))
    assert cs.include_worktree
    assert "uncommitted" in cs.base_reason
    files = by_path(cs)
    assert files["a.txt"].ranges[0].start == 2
    assert files["b.txt"].ranges[0].start == 2
    assert files["c.txt"].status == "untracked"
    assert [(r.start, r.end) for r in files["c.txt"].ranges] == [(1, 3)]
    without = collect_changes(open_project(repo), include_worktree=False)
    assert "c.txt" not in by_path(without)
    assert not without.include_worktree


def test_project_in_subfolder_reports_project_relative_paths(make_repo: Callable[..., Path]) -> None:
    repo = make_repo({"svc/go.mod": "module x\n", "other/readme.md": "x\n"})
    git(repo, "checkout", "-q", "-b", "feature")
    write(repo, "svc/main.go", "package main\n")
    write(repo, "other/readme.md", "y\n")
    commit_all(repo, "both")
    cs = collect_changes(open_project(repo / "svc"))
    assert [f.path for f in cs.files] == ["main.go"]


def test_no_default_branch_falls_back_to_head_parent(make_repo: Callable[..., Path]) -> None:
    repo = make_repo({"a.txt": "a\n"}, branch="trunk")
    write(repo, "a.txt", "a\nb\n")
    commit_all(repo, "second")
    cs = collect_changes(open_project(repo))
    assert cs.base_label == "HEAD~1"
    assert "no default branch found" in cs.base_reason
    assert [f.path for f in cs.files] == ["a.txt"]


# -- bad input -----------------------------------------------------------------------------------


def test_base_not_a_commit_lists_nearby_branches(make_repo: Callable[..., Path]) -> None:
    repo = make_repo({"a.txt": "a\n"})
    git(repo, "branch", "feature/login")
    with pytest.raises(InputError) as info:
        collect_changes(open_project(repo), "feature/logn")
    message = str(info.value)
    assert "'feature/logn' is not a commit" in message
    assert "feature/login" in message


def test_base_naming_a_tree_says_so(make_repo: Callable[..., Path]) -> None:
    repo = make_repo({"a.txt": "a\n"})
    with pytest.raises(InputError, match=r"names a tree, not a commit"):
        collect_changes(open_project(repo), "HEAD^{tree}")


@pytest.mark.parametrize("field", ["base", "head"])
def test_ref_starting_with_dash_is_refused(make_repo: Callable[..., Path], field: str) -> None:
    repo = make_repo({"a.txt": "a\n"})
    with pytest.raises(UnsafeArgumentError, match=rf"{field} '--output=/tmp/x' starts with '-'"):
        collect_changes(open_project(repo), **{field: "--output=/tmp/x"})


def test_detached_head(make_repo: Callable[..., Path]) -> None:
    repo = make_repo({"a.txt": "a\n"})
    git(repo, "checkout", "-q", "-b", "feature")
    write(repo, "a.txt", "a\nb\n")
    sha = commit_all(repo, "feature")
    git(repo, "checkout", "-q", "--detach", sha)
    cs = collect_changes(open_project(repo))
    assert f"detached at {sha[:12]}" in cs.head_label
    assert any("detached" in n for n in cs.notes)
    assert [f.path for f in cs.files] == ["a.txt"]


def test_empty_range_says_so(make_repo: Callable[..., Path]) -> None:
    repo = make_repo({"a.txt": "a\n"})
    cs = collect_changes(open_project(repo), "main", include_worktree=False)
    assert cs.files == []
    assert any(n.startswith("no changes:") for n in cs.notes)


def test_shallow_clone_without_merge_base_falls_back(tmp_path: Path, make_repo: Callable[..., Path]) -> None:
    origin = make_repo({"a.txt": "a\n"}, name="origin")
    git(origin, "checkout", "-q", "-b", "feature")
    for i in range(3):
        write(origin, "a.txt", f"a\n{i}\n")
        commit_all(origin, f"feature {i}")
    git(origin, "checkout", "-q", "main")
    for i in range(3):
        write(origin, "m.txt", f"{i}\n")
        commit_all(origin, f"main {i}")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", "--depth", "2", "--no-single-branch", "-b", "feature", f"file://{origin}", str(clone))
    cs = collect_changes(open_project(clone))
    assert any("shallow clone" in n and "merge-base" in n and "HEAD~1" in n for n in cs.notes)
    assert cs.base_label == "HEAD~1"
    assert [f.path for f in cs.files] == ["a.txt"]


def test_huge_generated_file_is_bounded(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "big")
    lines = 1_000_000
    write(repo, "gen.txt", "".join(f"generated line {i:09d} aaaaaaaaaaaaaaaaaaaaaaaa\n" for i in range(lines)))
    commit_all(repo, "base")
    git(repo, "checkout", "-q", "-b", "regen")
    write(repo, "gen.txt", "".join(f"generated line {i:09d} bbbbbbbbbbbbbbbbbbbbbbbb\n" for i in range(lines)))
    assert (repo / "gen.txt").stat().st_size >= 50_000_000
    tracemalloc.start()
    cs, kept = scan_changes(open_project(repo), include_worktree=True)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 25_000_000, f"peak {peak} bytes: the diff was held in memory"
    gen = by_path(cs)["gen.txt"]
    assert (gen.added, gen.removed) == (lines, lines)
    assert [(r.start, r.end) for r in gen.ranges] == [(1, lines)]
    assert kept["gen.txt"].truncated
    assert len(kept["gen.txt"].lines) < 10_000
    assert RANGES_PER_FILE > 0
