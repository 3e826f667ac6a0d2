"""Config file error messages: keys as the user wrote them, BOMs, odd file types, absurd nesting."""

from __future__ import annotations

from pathlib import Path

import pytest

from itest_mcp.tools.errors import ConfigError
from itest_mcp.tools.phases import load_phases
from itest_mcp.tools.repo import open_project


def _error(repo: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_phases(open_project(repo))
    return str(info.value)


def test_pyproject_error_names_key_with_tool_itest_prefix(make_repo):
    text = '[project]\nname = "x"\n\n[tool.itest.phases.a]\nrunner = "go"\nrce = true\n'
    message = _error(make_repo({"pyproject.toml": text}))
    assert message.startswith("pyproject.toml:6 [tool.itest.phases.a.rce]: unknown key 'rce'")


def test_pyproject_unknown_top_level_key_has_prefix(make_repo):
    text = "[tool.itest]\ndiscovr = true\n"
    message = _error(make_repo({"pyproject.toml": text}))
    assert message.startswith("pyproject.toml:2 [tool.itest.discovr]: unknown key 'discovr'")


def test_itest_toml_error_key_has_no_prefix(make_repo):
    message = _error(make_repo({"itest.toml": '[phases.a]\nrunner = "go"\nrce = true\n'}))
    assert message.startswith("itest.toml:3 [phases.a.rce]:")


BOM = "\ufeff"


def test_itest_toml_with_utf8_bom_loads(make_repo):
    repo = make_repo({"itest.toml": BOM + '[phases.unit]\nrunner = "pytest"\npaths = ["tests"]\n'})
    assert (repo / "itest.toml").read_bytes().startswith(b"\xef\xbb\xbf")
    assert load_phases(open_project(repo)).names() == ["unit"]


def test_bom_keeps_error_line_numbers(make_repo):
    repo = make_repo({"itest.toml": BOM + '[phases.a]\nrunner = "go"\nrce = true\n'})
    assert _error(repo).startswith("itest.toml:3 [phases.a.rce]: unknown key 'rce'")


def test_pyproject_with_utf8_bom_loads(make_repo):
    text = BOM + '[project]\nname = "x"\n\n[tool.itest.phases.unit]\nrunner = "pytest"\npaths = ["tests"]\n'
    assert load_phases(open_project(make_repo({"pyproject.toml": text}))).names() == ["unit"]


def test_itest_toml_directory_is_an_error(make_repo):
    repo = make_repo({"itest.toml/README": "oops\n"})
    assert (repo / "itest.toml").is_dir()
    message = _error(repo)
    assert message.startswith("itest.toml: ")
    assert "is a directory" in message
    assert str(repo / "itest.toml") in message


def test_dangling_itest_toml_symlink_is_an_error(make_repo):
    repo = make_repo({})
    (repo / "itest.toml").symlink_to("config/missing.toml")
    message = _error(repo)
    assert message.startswith("itest.toml: ")
    assert "config/missing.toml" in message
    assert "does not exist" in message


def test_pyproject_directory_is_an_error(make_repo):
    repo = make_repo({"pyproject.toml/x": "oops\n"})
    assert "is a directory" in _error(repo)


def test_symlink_to_a_real_config_file_still_loads(make_repo):
    repo = make_repo({"config/itest.toml": '[phases.unit]\nrunner = "pytest"\npaths = ["tests"]\n'})
    (repo / "itest.toml").symlink_to("config/itest.toml")
    assert load_phases(open_project(repo)).names() == ["unit"]


DEPTH = 10_000


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("a = " + "[" * DEPTH, id="unclosed-arrays"),
        pytest.param("a = " + "[" * DEPTH + "]" * DEPTH, id="closed-arrays"),
        pytest.param("a = " + "{b = " * DEPTH + "1" + "}" * DEPTH, id="inline-tables"),
    ],
)
def test_deeply_nested_toml_is_a_config_error(make_repo, text):
    message = _error(make_repo({"itest.toml": text}))
    assert message.startswith("itest.toml: ")
    assert "nested too deeply to read" in message


def test_deeply_nested_value_under_a_phase_is_a_config_error(make_repo):
    # tomllib reads long dotted keys without recursing; the deep table must not crash validation.
    text = '[phases.x]\nrunner = "go"\nenv.' + ".".join(["a"] * DEPTH) + " = 1\n"
    message = _error(make_repo({"itest.toml": text}))
    assert message.startswith("itest.toml:")
    assert "[phases.x.env.a]: Input should be a valid string" in message
