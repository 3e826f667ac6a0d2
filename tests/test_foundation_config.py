"""itest.toml / [tool.itest]: phases from config, and errors that name file, key and line."""

from __future__ import annotations

import pytest

from itest_mcp.tools.errors import ConfigError, UnknownPhaseError
from itest_mcp.tools.phases import ArgvOptions, Runner, build_argv, load_phases
from itest_mcp.tools.repo import open_project

GOOD = """\
[phases.network]
description = "network edge cases"
order = 10
runner = "go"
packages = ["./test/integration"]
run = "^TestNetworkEdgeCases$"
tags = ["integration"]
timeout = "10m"
env = { GITHUB_API_URL = "http://127.0.0.1:9" }
triggers = ["internal/gh/**"]

[phases.py]
runner = "pytest"
paths = ["tests/integration"]
markers = "integration"
order = 20

[phases.mage]
runner = "command"
argv = ["magex", "test:race"]
junit = "reports/*.xml"
order = 30
"""


def test_config_phases_load_in_order_with_exact_argv(make_repo):
    project = open_project(make_repo({"itest.toml": GOOD}))
    phases = load_phases(project)
    assert phases.config_file == "itest.toml"
    assert phases.discovered is False
    assert phases.names() == ["network", "py", "mage"]
    network = phases.get("network")
    assert network.timeout_s == 600
    assert network.env == {"GITHUB_API_URL": "http://127.0.0.1:9"}
    assert build_argv(network) == [
        "go", "test", "-json", "-race", "-tags=integration", "-count=1", "-run=^TestNetworkEdgeCases$",
        "-timeout=600s", "./test/integration",
    ]  # fmt: skip
    argv = build_argv(phases.get("py"), ArgvOptions(test="test_retry"))
    assert argv[1:] == ["-m", "pytest", "-m", "integration", "-k", "test_retry", "--", "tests/integration"]
    assert phases.get("mage").runner is Runner.COMMAND
    assert build_argv(phases.get("mage")) == ["magex", "test:race"]


def test_pyproject_tool_itest_table_is_read(make_repo):
    text = '[project]\nname = "x"\n\n[tool.itest.phases.unit]\nrunner = "pytest"\npaths = ["tests"]\n'
    project = open_project(make_repo({"pyproject.toml": text}))
    phases = load_phases(project)
    assert phases.config_file == "pyproject.toml"
    assert phases.names() == ["unit"]


def _error(make_repo, text: str, name: str = "itest.toml") -> str:
    project = open_project(make_repo({name: text}))
    with pytest.raises(ConfigError) as info:
        load_phases(project)
    return str(info.value)


def test_unknown_key_names_file_key_and_line(make_repo):
    message = _error(make_repo, '[phases.a]\nrunner = "go"\nrce = true\n')
    assert message.startswith("itest.toml:3 [phases.a.rce]: unknown key 'rce'")
    assert "race" in message  # the known keys are listed


def test_wrong_type_names_file_key_and_line(make_repo):
    message = _error(make_repo, '[phases.a]\nrunner = "go"\n\ncount = "many"\n')
    assert message.startswith("itest.toml:4 [phases.a.count]:")
    assert "'many'" in message


def test_phase_without_runner(make_repo):
    message = _error(make_repo, '[phases.lonely]\ndescription = "x"\n')
    assert message.startswith("itest.toml:1 [phases.lonely]: phase 'lonely' has no 'runner'")


def test_key_of_another_runner(make_repo):
    message = _error(make_repo, '[phases.a]\nrunner = "go"\nmarkers = "integration"\n')
    assert "itest.toml:3 [phases.a.markers]" in message
    assert "belongs to runner 'pytest'" in message


def test_duplicate_phase_names_are_refused_with_line(make_repo):
    message = _error(make_repo, '[phases.a]\nrunner = "go"\n\n[phases.a]\nrunner = "pytest"\n')
    assert message.startswith("itest.toml:4:")
    assert "not valid TOML" in message


def test_unknown_top_level_key_in_pyproject(make_repo):
    text = "[tool.itest]\nphaes = {}\n"
    message = _error(make_repo, text, name="pyproject.toml")
    assert message.startswith("pyproject.toml:2 [tool.itest.phaes]: unknown key 'phaes'")


def test_bad_timeout_and_command_without_argv(make_repo):
    assert "is not a duration" in _error(make_repo, '[phases.a]\nrunner = "go"\ntimeout = "soon"\n')
    assert "needs 'argv'" in _error(make_repo, '[phases.a]\nrunner = "command"\n')


def test_unknown_phase_lists_known_ones(make_repo):
    phases = load_phases(open_project(make_repo({"itest.toml": GOOD})))
    with pytest.raises(UnknownPhaseError, match="unknown phase 'netwrk'; known phases: mage, network, py"):
        phases.get("netwrk")


def test_test_filter_is_a_value_never_a_flag(make_repo):
    from itest_mcp.tools.errors import UnsafeArgumentError

    phase = load_phases(open_project(make_repo({"itest.toml": GOOD}))).get("network")
    with pytest.raises(UnsafeArgumentError, match="test '-exec=sh' starts with '-'"):
        build_argv(phase, ArgvOptions(test="-exec=sh"))
    assert "-run=^TestNetworkEdgeCases$" in build_argv(phase, ArgvOptions(test="TestNetworkEdgeCases"))
    assert "-run=^TestNetworkEdgeCases$/^sub_case$" in build_argv(
        phase, ArgvOptions(test="TestNetworkEdgeCases/sub_case")
    )
    # A regex is narrowed to the phase's own tests (tests/test_run_fixes_selection.py covers refusals).
    assert "-run=^(TestNetworkEdgeCases)$" in build_argv(phase, ArgvOptions(test="TestNetwork(Edge|X)"))


def test_error_in_second_array_table_entry_points_at_its_line(make_repo):
    from pydantic import BaseModel, ConfigDict

    from itest_mcp.tools.config import load_raw_config, validate_section

    class Rule(BaseModel):
        model_config = ConfigDict(extra="forbid")
        id: str
        pattern: str

    class Assess(BaseModel):
        model_config = ConfigDict(extra="forbid")
        rules: list[Rule]

    text = '[[assess.rules]]\nid = "a"\npattern = "x"\n\n[[assess.rules]]\nid = "b"\npatern = "y"\n'
    raw = load_raw_config(open_project(make_repo({"itest.toml": text})))
    with pytest.raises(ConfigError) as info:
        validate_section(raw, ("assess",), raw.section("assess"), Assess)
    assert str(info.value).startswith("itest.toml:5 [assess.rules[1]")
