"""Bad values in a phase's config: a config error naming file:line and key before anything runs, never a
traceback at spawn or a run recorded as cancelled."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

from itest_mcp.tools.errors import ConfigError
from itest_mcp.tools.phases import load_phases
from itest_mcp.tools.repo import open_project
from itest_mcp.tools.runner import run_phase

HEAD = '[phases.x]\nrunner = "command"\n'


def _config_error(make_repo: Callable[..., Path], body: str) -> ConfigError:
    """The error a real `run` of phase x gives with `body` under its table (line 3 onwards)."""
    project = open_project(make_repo({"itest.toml": HEAD + body}))
    with pytest.raises(ConfigError) as caught:
        anyio.run(lambda: run_phase(project, "x"))
    return caught.value


@pytest.mark.parametrize(
    ("glob", "problem"),
    [
        ("/etc/*.conf", "is an absolute path"),
        ("../../etc/*.xml", "uses '..'"),
        ("reports/../../etc/*.xml", "uses '..'"),
        ("", "is empty"),
    ],
)
def test_a_junit_glob_outside_the_project_is_a_config_error(
    make_repo: Callable[..., Path], glob: str, problem: str
) -> None:
    err = _config_error(make_repo, f'argv = ["true"]\njunit = "{glob}"\n')
    assert str(err).startswith("itest.toml:4 [phases.x.junit]: ")
    assert f"junit glob {glob!r} {problem}" in str(err) and "relative to the project root" in str(err)


def test_a_relative_junit_glob_is_accepted(make_repo: Callable[..., Path]) -> None:
    project = open_project(make_repo({"itest.toml": HEAD + 'argv = ["true"]\njunit = "build/**/TEST-*.xml"\n'}))
    assert load_phases(project).get("x").junit == "build/**/TEST-*.xml"
