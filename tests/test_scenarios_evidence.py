"""Scenario evidence names the test that sets the scenario up, not one that merely mentions it."""

from __future__ import annotations

from pathlib import Path

from itest_mcp.tools.scenarios import assess_scenarios

PY_TESTS = """import pytest


@pytest.mark.integration
def test_get(server):
    def handler(request):
        if request.headers.get("Authorization") != "Bearer t":
            return 401, {}, b"bad auth"
        return 200, {}, b"{}"
    server.handler = handler
    # retries are covered elsewhere; 401 is not retried
    assert client(server).get() == {}


@pytest.mark.integration
def test_flaky_backend(server):
    server.handler = lambda request: (200, {}, b"{}")
    assert client(server).get() == {}


@pytest.mark.integration
def test_bad_token(server):
    server.handler = lambda request: (401, {}, b"Bad credentials")
    with pytest.raises(Unauthorized):
        client(server).get()
"""


def _by_id(root: Path, suite: str) -> dict[str, list[str]]:
    return {s.scenario: [e.test for e in s.evidence] for s in assess_scenarios(root, {}) if s.suite == suite}


def test_go_evidence_skips_header_guards_and_the_flaky_test(demo_repo: Path) -> None:
    go = _by_id(demo_repo, "go")
    # Before: TestAPIClientGetRepo, whose handler answers 401 only to a request without the token.
    assert go["auth-failure"] == ["TestAPIClientUnauthorized"]
    # Before: TestFlakyEventualConsistency, a test that is flaky itself and calls no client.
    assert "TestFlakyEventualConsistency" not in go["intermittent-failure"]
    assert go["intermittent-failure"][0] == "TestNetworkEdgeCases/retry_after_503"


def test_python_evidence_skips_guards_comments_and_test_names(make_repo) -> None:
    repo = make_repo({"tests/integration/test_api.py": PY_TESTS})
    py = _by_id(repo, "python")
    assert py["auth-failure"] == ["test_bad_token"]
    assert py["intermittent-failure"] == []  # neither "flaky" in a name nor "retries" in a comment count
