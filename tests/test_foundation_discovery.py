"""Discovery without config: Go integration files, task runners, pytest suites."""

from __future__ import annotations

from itest_mcp.tools.discovery import constraint_tags, phase_name_for
from itest_mcp.tools.phases import build_argv, list_phases, load_phases
from itest_mcp.tools.repo import open_project

GO_TEST = """\
//go:build integration

package integration

import "testing"

func TestNetworkEdgeCases(t *testing.T) {}
func TestRetryBudget(t *testing.T) {}
func helperNotATest(t *testing.T) {}
func Testlowercase(t *testing.T) {}
"""


def test_demo_phases_are_discovered_per_file(demo_repo):
    phases = load_phases(open_project(demo_repo))
    assert phases.discovered is True
    names = phases.names()
    for expected in ("api-client", "network-edge-cases", "flaky", "race", "slow", "all", "python-integration"):
        assert expected in names
    network = phases.get("network-edge-cases")
    assert network.run == "^(TestNetworkEdgeCases)$"
    assert network.tags == ["integration"]
    assert network.race is True
    assert network.source == "discovery:go-integration"
    assert network.test_files == ["test/integration/network_edge_cases_test.go"]
    assert build_argv(network)[:6] == ["go", "test", "-json", "-race", "-tags=integration", "-count=1"]
    assert build_argv(network)[-1] == "./test/integration"


def test_other_build_tags_become_their_own_phase_and_stay_out_of_all(demo_repo):
    phases = load_phases(open_project(demo_repo))
    performance = phases.get("performance")
    assert performance.tags == ["integration", "performance"]
    assert "not part of 'all'" in performance.description
    everything = phases.get("all")
    assert everything.tags == ["integration"]
    assert "test/integration/performance_test.go" not in everything.test_files
    assert phases.names().index("all") > phases.names().index("network-edge-cases")


def test_makefile_magefile_and_marked_pytest(make_repo):
    repo = make_repo(
        {
            "go.mod": "module example.com/x\n",
            "test/integration/retry_budget_test.go": GO_TEST,
            "internal/gh/gh_test.go": "//go:build integration\n\npackage gh\n\nfunc TestGH(t *testing.T) {}\n",
            "internal/gh/unit_test.go": "package gh\n\nfunc TestUnit(t *testing.T) {}\n",
            "Makefile": "test:\n\tgo test ./...\ntest-integration-network:\n\tgo test\nintegration-all: x\nother:\n",
            "magefile.go": "//go:build mage\npackage main\n",
            "pkg/test_client.py": "import pytest\n\n@pytest.mark.integration\ndef test_x():\n    pass\n",
        }
    )
    listing = list_phases(open_project(repo))
    by_name = {p.name: p for p in listing.phases}
    budget = by_name["retry-budget"]
    assert "-run=^(TestNetworkEdgeCases|TestRetryBudget)$" in budget.argv
    assert by_name["gh"].argv[-1] == "./internal/gh"
    assert "unit" not in by_name  # no integration constraint, not under test/integration
    assert by_name["test-integration-network"].argv == ["make", "test-integration-network"]
    assert by_name["integration-all"].argv == ["make", "integration-all"]
    assert "test" not in by_name and "other" not in by_name
    magex = by_name["magex-test-race"]
    assert magex.argv == ["magex", "test:race"]
    assert magex.source == "discovery:magefile"
    assert magex.available is False and "not on PATH" in (magex.note or "")
    python = by_name["python-integration"]
    assert python.argv[3:5] == ["-m", "integration"]
    assert set(by_name["all"].argv[-2:]) == {"./test/integration", "./internal/gh"}


def test_same_file_name_in_two_packages_gets_distinct_names(make_repo):
    repo = make_repo({"a/x_test.go": GO_TEST, "b/x_test.go": GO_TEST})
    names = load_phases(open_project(repo)).names()
    assert "a-x" in names and "b-x" in names


def test_configured_phases_replace_discovery_unless_asked(make_repo):
    files = {"test/integration/net_test.go": GO_TEST, "itest.toml": '[phases.mine]\nrunner = "pytest"\n'}
    assert load_phases(open_project(make_repo(files))).names() == ["mine"]
    files["itest.toml"] = 'discover = true\n[phases.mine]\nrunner = "pytest"\n'
    assert set(load_phases(open_project(make_repo(files, name="r2"))).names()) == {"mine", "net", "all"}


def test_constraint_and_name_helpers():
    assert constraint_tags("integration && !windows") == ({"integration"}, set())
    assert constraint_tags("integration && performance") == ({"integration", "performance"}, set())
    assert constraint_tags("!integration") == (set(), {"integration"})
    assert phase_name_for("network_edge_cases_test.go") == "network-edge-cases"


def test_empty_repository_lists_no_phases(make_repo):
    listing = list_phases(open_project(make_repo({"README.md": "hi\n"})))
    assert listing.phases == []
