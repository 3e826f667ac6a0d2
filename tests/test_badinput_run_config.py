"""Bad values in a phase's config: a config error naming file:line and key before anything runs, never a
traceback at spawn or a run recorded as cancelled."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

from itest_mcp.tools.errors import ConfigError, InputError
from itest_mcp.tools.phases import load_phases
from itest_mcp.tools.repo import open_project
from itest_mcp.tools.runner import RunOptions, run_phase

HEAD = '[phases.x]\nrunner = "command"\n'
TIMEOUT_KEY = "4 [phases.x.timeout]"


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


@pytest.mark.parametrize(
    ("body", "line_key", "says"),
    [
        (
            'argv = ["true"]\nenv = { "A=B" = "1" }\n',
            "4 [phases.x.env]",
            "env name 'A=B' is not a usable variable name",
        ),
        ('argv = ["true"]\nenv = { "" = "1" }\n', "4 [phases.x.env]", "env name '' is not a usable variable name"),
        ('argv = ["true"]\nenv = { A = "x\\u0000y" }\n', "4 [phases.x.env.A]", "env A value 'x\\x00y' contains a NUL"),
        ('argv = ["true", "a\\u0000b"]\n', "3 [phases.x.argv]", "argv[1] 'a\\x00b' contains a NUL"),
        ('argv = [""]\n', "3 [phases.x.argv]", "argv[0] '' is empty; it names the program to run"),
        (
            'argv = ["true"]\ntimeout = inf\n',
            TIMEOUT_KEY,
            "timeout must be a finite number of seconds, at most 86400 s",
        ),
        (
            'argv = ["true"]\ntimeout = nan\n',
            TIMEOUT_KEY,
            "timeout must be a finite number of seconds, at most 86400 s",
        ),
        ('argv = ["true"]\ntimeout = 1e308\n', TIMEOUT_KEY, "timeout is longer than the limit of 86400 s (24 h)"),
        ('argv = ["true"]\ntimeout = "25h"\n', TIMEOUT_KEY, "timeout is longer than the limit of 86400 s (24 h)"),
    ],
)
def test_an_env_argv_or_timeout_that_cannot_run_is_a_config_error(
    make_repo: Callable[..., Path], body: str, line_key: str, says: str
) -> None:
    err = _config_error(make_repo, body)
    assert str(err).startswith(f"itest.toml:{line_key}: ") and says in str(err)


def test_a_test_filter_with_a_nul_is_refused_before_the_run(make_repo: Callable[..., Path]) -> None:
    project = open_project(make_repo({"itest.toml": '[phases.p]\nrunner = "pytest"\n'}))
    with pytest.raises(InputError, match="contains a NUL character"):
        anyio.run(lambda: run_phase(project, "p", RunOptions(test="a\0b")))


def test_a_timeout_of_a_day_is_accepted(make_repo: Callable[..., Path]) -> None:
    project = open_project(make_repo({"itest.toml": HEAD + 'argv = ["true"]\ntimeout = "24h"\n'}))
    assert load_phases(project).get("x").timeout_s == 86400
