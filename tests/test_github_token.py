"""Token discovery (env order, `gh` present, `gh` missing), kinds from prefixes, and malformed tokens."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from itest_mcp.tools.errors import TokenError
from itest_mcp.tools.fake_github import FakeGitHub
from itest_mcp.tools.github import GitHubSettings, Token, TokenKind, discover_token, token_kind
from itest_mcp.tools.github_validate import validate_github_api
from itest_mcp.tools.repo import open_project


@pytest.mark.parametrize(
    ("value", "kind", "prefix"),
    [
        ("ghp_" + "a" * 36, TokenKind.CLASSIC, "ghp_"),
        ("github_pat_11AAAA_" + "b" * 40, TokenKind.FINE_GRAINED, "github_pat_"),
        ("ghs_" + "c" * 36, TokenKind.APP_INSTALLATION, "ghs_"),
        ("gho_" + "d" * 36, TokenKind.OAUTH, "gho_"),
        ("ghu_" + "e" * 36, TokenKind.USER_TO_SERVER, "ghu_"),
        ("0123456789abcdef0123456789abcdef01234567", TokenKind.LEGACY, None),
        ("something-else", TokenKind.UNKNOWN, None),
    ],
)
def test_kind_from_prefix(value: str, kind: TokenKind, prefix: str | None) -> None:
    assert token_kind(value) == (kind, prefix)


def test_token_repr_hides_the_value() -> None:
    token = Token("ghp_SECRETVALUE", "GITHUB_TOKEN")
    assert "SECRETVALUE" not in repr(token) and "SECRETVALUE" not in str(token)
    assert "GITHUB_TOKEN" in repr(token)
    assert token.scrub("echo ghp_SECRETVALUE!") == "echo ***!"


def test_discovery_order(tmp_path: Path) -> None:
    settings = GitHubSettings(token_env="MY_TOKEN")
    env = {"MY_TOKEN": "ghp_mine", "GITHUB_TOKEN": "ghp_gh", "GH_TOKEN": "gho_x", "PATH": str(tmp_path)}
    assert discover_token(settings, env=env).token.source == "MY_TOKEN"  # type: ignore[union-attr]
    env["MY_TOKEN"] = ""
    found = discover_token(settings, env=env)
    assert found.token is not None and found.token.source == "GITHUB_TOKEN"
    assert "MY_TOKEN: set but empty, skipped" in found.tried
    del env["GITHUB_TOKEN"]
    found = discover_token(settings, env=env)
    assert found.token is not None and found.token.source == "GH_TOKEN" and found.token.kind is TokenKind.OAUTH


def test_gh_missing(tmp_path: Path) -> None:
    """PATH without gh: no token, and the report says gh is not on PATH."""
    found = discover_token(GitHubSettings(), env={"PATH": str(tmp_path)})
    assert found.token is None
    assert found.tried == ["GITHUB_TOKEN: not set", "GH_TOKEN: not set", "gh: not on PATH"]


def _fake_gh(folder: Path, body: str) -> None:
    gh = folder / "gh"
    gh.write_text("#!/bin/sh\n" + body + "\n", encoding="utf-8")
    gh.chmod(gh.stat().st_mode | stat.S_IEXEC)


def test_gh_auth_token_is_used(tmp_path: Path) -> None:
    _fake_gh(tmp_path, 'test "$1 $2 $3 $4" = "auth token --hostname ghe.example.com" && echo ghp_fromgh')
    found = discover_token(
        GitHubSettings(), env={"PATH": f"{tmp_path}:{os.defpath}"}, api_url="https://ghe.example.com/api/v3"
    )
    assert found.token is not None
    assert found.token.source == "gh auth token (ghe.example.com)" and found.token.kind is TokenKind.CLASSIC


def test_gh_not_logged_in(tmp_path: Path) -> None:
    _fake_gh(tmp_path, 'echo "no oauth token found for github.com" >&2; exit 1')
    found = discover_token(GitHubSettings(), env={"PATH": f"{tmp_path}:{os.defpath}"})
    assert found.token is None
    assert found.tried[-1] == "gh auth token --hostname github.com: no oauth token found for github.com"


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("ghp_abc\n", "a line break at position 8 of 8"),
        ("ghp_a bc", "whitespace at position 6"),
        (" ghp_abc", "whitespace at position 1"),
        ("ghp_a\tbc", "whitespace"),
        ("ghp_abcé", "a non-ASCII character"),
        ("ghp_\x01abc", "a control character"),
    ],
)
@pytest.mark.anyio
async def test_malformed_token_refused_before_sending(make_repo, value: str, problem: str) -> None:  # type: ignore[no-untyped-def]
    project = open_project(make_repo({"README.md": "x\n"}))
    async with FakeGitHub() as fake:
        with pytest.raises(TokenError) as info:
            await validate_github_api(
                project, env={"GITHUB_API_URL": fake.url, "GITHUB_TOKEN": value}, handling_check=False
            )
        assert fake.requests == [], "nothing may be sent with a malformed token"
    message = str(info.value)
    assert problem in message and "GITHUB_TOKEN" in message and "it was not sent" in message
    assert value.strip() not in message


def test_empty_gh_output_is_no_token(tmp_path: Path) -> None:
    _fake_gh(tmp_path, "echo")
    found = discover_token(GitHubSettings(), env={"PATH": f"{tmp_path}:{os.defpath}"})
    assert found.token is None and found.tried[-1].endswith("printed nothing")


def test_gh_output_with_inner_newline_is_refused(tmp_path: Path) -> None:
    _fake_gh(tmp_path, "printf 'ghp_one\\nghp_two\\n'")
    with pytest.raises(TokenError, match=r"gh auth token \(github.com\) contains a line break"):
        discover_token(GitHubSettings(), env={"PATH": f"{tmp_path}:{os.defpath}"})
