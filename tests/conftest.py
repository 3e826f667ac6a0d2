"""Shared fixtures: real git repositories in tmp_path and a fresh copy of the demo."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "examples" / "demo"
FIXTURES = Path(__file__).resolve().parent / "fixtures"

GIT_ENV = {
    "GIT_AUTHOR_NAME": "itest",
    "GIT_AUTHOR_EMAIL": "itest@example.com",
    "GIT_COMMITTER_NAME": "itest",
    "GIT_COMMITTER_EMAIL": "itest@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def git(repo: Path, *args: str) -> str:
    """Run git in `repo` (tests build real repositories; this is test scaffolding, not the product)."""
    env = {**os.environ, **GIT_ENV, "HOME": str(repo.parent)}
    out = subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True)
    return out.stdout


def init_repo(path: Path, branch: str = "main") -> Path:
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", branch)
    git(path, "config", "commit.gpgsign", "false")
    return path


def commit_all(repo: Path, message: str = "change") -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--allow-empty", "-m", message)
    return git(repo, "rev-parse", "HEAD").strip()


@pytest.fixture
def make_repo(tmp_path: Path) -> Callable[..., Path]:
    """Build a git repository from {relative path: text} and commit it."""

    def build(files: dict[str, str] | None = None, name: str = "repo", branch: str = "main") -> Path:
        repo = init_repo(tmp_path / name, branch)
        for rel, text in (files or {}).items():
            target = repo / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        commit_all(repo, "initial")
        return repo

    return build


@pytest.fixture
def demo_repo(tmp_path: Path) -> Path:
    """A fresh copy of examples/demo as its own git repository with one commit."""
    target = tmp_path / "demo"
    shutil.copytree(DEMO, target, ignore=shutil.ignore_patterns(".itest", "__pycache__", ".pytest_cache"))
    init_repo(target)
    commit_all(target, "demo")
    return target
