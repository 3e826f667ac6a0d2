"""`report --out` never overwrites a file that is not one of our reports, never writes into .git/ or a folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers_history import factory

from itest_mcp.server.cli import main
from itest_mcp.tools import history
from itest_mcp.tools.repo import open_project


@pytest.fixture
def repo(make_repo) -> Path:  # type: ignore[no-untyped-def]
    root: Path = make_repo({"README.md": "# my project\n", "internal/x.go": "package x\n"})
    history.write_run_folder(open_project(root), factory.make_run(0, [factory.make_test("TestA")]))
    return root


def _report(repo: Path, *args: str) -> int:
    return main(["--repo", str(repo), "report", *args])


def test_out_refuses_an_existing_user_file(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _report(repo, "--out", "README.md") == 2
    err = capsys.readouterr().err
    assert "'README.md' already exists and is not a report itest-mcp wrote" in err and "new file name" in err
    assert (repo / "README.md").read_text(encoding="utf-8") == "# my project\n"


def test_out_refuses_git_folder(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = (repo / ".git" / "config").read_bytes()
    for target in (".git/config", ".git/new-report.md", ".git"):
        assert _report(repo, "--out", target) == 2
        assert "inside .git/" in capsys.readouterr().err
    assert (repo / ".git" / "config").read_bytes() == config
    assert not (repo / ".git" / "new-report.md").exists()


def test_out_refuses_a_folder(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _report(repo, "--out", "internal") == 2
    err = capsys.readouterr().err
    assert "'internal' is a folder; pick a file name inside it (e.g. internal/report.md)" in err
    assert "Traceback" not in err


def test_out_under_a_file_is_refused(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _report(repo, "--out", "README.md/r.md") == 2
    assert "'README.md' is a file, not a folder" in capsys.readouterr().err


def test_out_may_replace_our_own_report_in_each_format(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for fmt, name in (("md", "r.md"), ("json", "r.json"), ("html", "r.html")):
        assert _report(repo, "--format", fmt, "--out", name) == 0
        first = (repo / name).read_text(encoding="utf-8")
        assert _report(repo, "--format", fmt, "--out", name) == 0, capsys.readouterr().err
        assert (repo / name).read_text(encoding="utf-8") != first  # a new report id: it was rewritten
    assert _report(repo, "--out", "new/dir/report.md") == 0
    assert (repo / "new/dir/report.md").read_text(encoding="utf-8").startswith("# Integration test report")


@pytest.mark.anyio
async def test_mcp_build_report_out_refuses_a_user_file(repo: Path) -> None:
    from mcp import Client

    from itest_mcp.server.app import create_app

    async with Client(create_app(repo)) as client:
        r = await client.call_tool("build_report", {"out": "README.md"})
        assert r.is_error and "'README.md' already exists and is not a report itest-mcp wrote" in str(r.content)
        r = await client.call_tool("build_report", {"out": ".git/HEAD"})
        assert r.is_error and "inside .git/" in str(r.content)
    assert (repo / "README.md").read_text(encoding="utf-8") == "# my project\n"
    assert (repo / ".git" / "HEAD").read_text(encoding="utf-8").startswith("ref: ")
