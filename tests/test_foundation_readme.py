"""The README's config examples are real: every TOML block loads without error."""

from __future__ import annotations

import re
from pathlib import Path

from conftest import ROOT

from itest_mcp.tools.config import load_raw_config
from itest_mcp.tools.fault_profiles import load_fault_config
from itest_mcp.tools.github import load_github_settings
from itest_mcp.tools.phases import load_phases
from itest_mcp.tools.repo import open_project
from itest_mcp.tools.rules import load_rules


def test_readme_config_examples_load(make_repo):
    blocks = re.findall(r"```toml\n(.*?)```", (ROOT / "README.md").read_text(encoding="utf-8"), re.S)
    assert len(blocks) >= 2
    repo: Path = make_repo({"itest.toml": "\n".join(blocks)})
    project = open_project(repo)
    phases = load_phases(project)
    assert {"network-edge-cases", "python", "mage"} <= set(phases.names())
    rules = load_rules(load_raw_config(project))
    assert any(rule.id == "billing-client" for rule in rules.rules)
    assert load_github_settings(project).api_url == "https://ghe.example.com/api/v3"
    assert "retry-check" in load_fault_config(project).profiles
