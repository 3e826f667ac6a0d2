"""Config errors read as one sentence: no pydantic "Value error, " prefix, the value quoted once."""

from __future__ import annotations

import pytest

from itest_mcp.tools.errors import ConfigError
from itest_mcp.tools.phases import load_phases
from itest_mcp.tools.repo import open_project


@pytest.mark.parametrize("timeout", ["0", "inf"])
def test_a_bad_timeout_is_one_clear_sentence(make_repo, timeout: str) -> None:  # type: ignore[no-untyped-def]
    repo = make_repo({"itest.toml": f'[phases.a]\nrunner = "go"\ntimeout = {timeout}\n'})
    with pytest.raises(ConfigError) as err:
        load_phases(open_project(repo))
    text = str(err.value)
    assert "itest.toml:3" in text and "timeout" in text
    assert "Value error" not in text
    assert text.count(f"got {timeout}") <= 1 and text.count("(got") <= 1, text
