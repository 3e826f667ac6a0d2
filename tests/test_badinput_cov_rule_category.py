"""An `[[assess.rules]]` rule whose category is neither built in nor declared under `[assess.categories]` (a
typo such as "gihub-api") is a config error naming file:line, the value and the known categories."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from itest_mcp.tools.changes import assess_changes
from itest_mcp.tools.errors import ConfigError
from itest_mcp.tools.repo import open_project

RULE = '[[assess.rules]]\nid = "ours"\ncategory = "{category}"\npaths = ["internal/**"]\n'


def test_typo_in_a_rule_category_is_a_config_error(make_repo: Callable[..., Path]) -> None:
    toml = "[assess]\nignore = []\n\n" + RULE.format(category="gihub-api")
    repo = make_repo({"itest.toml": toml, "internal/a.go": "package a\n"})
    with pytest.raises(ConfigError) as err:
        assess_changes(open_project(repo), import_graph=False)
    message = str(err.value)
    assert "itest.toml:6" in message
    assert "'gihub-api'" in message and "github-api" in message and "[assess.categories" in message


def test_a_category_declared_under_assess_categories_is_accepted(make_repo: Callable[..., Path]) -> None:
    toml = RULE.format(category="billing") + '\n[assess.categories.billing]\nrisk = "money moves"\n'
    repo = make_repo({"itest.toml": toml, "internal/a.go": "package a\n"})
    assessment = assess_changes(open_project(repo), import_graph=False)
    found = next(f for f in assessment.files if f.path == "internal/a.go")
    assert [c.category for c in found.categories] == ["billing"]
