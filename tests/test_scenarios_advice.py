"""Scenario advice in the suite's own language, aimed at code under test, ranked after the change's own gaps."""

from __future__ import annotations

import shutil

import pytest
from conftest import commit_all, git

from itest_mcp.tools.coverage import find_coverage_gaps
from itest_mcp.tools.repo import open_project
from itest_mcp.tools.scenarios import is_test_path

NEEDS_GO = pytest.mark.skipif(shutil.which("go") is None, reason="go is not installed")

GO_CLIENT = """package api

import "net/http"

func Get(c *http.Client, url string) (int, error) {
\tresp, err := c.Get(url)
\tif err != nil {
\t\treturn 0, err
\t}
\treturn resp.StatusCode, nil
}
"""
GO_TEST = """package integration

import "testing"

func TestGet(t *testing.T) {
\tt.Log("get")
}
"""
PY_CLIENT = """import urllib.request


def fetch(url, timeout=2.0):
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return resp.read()
"""
# A fixture with threads and an HTTP server: the signals a concurrency scenario looks for, but test code.
PY_TEST = """import threading
from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler

import pytest

from pyclient.client import fetch


@pytest.fixture
def server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    lock = threading.Lock()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    with lock:
        yield srv
    srv.shutdown()


def test_fetch(server):
    assert fetch("http://127.0.0.1:%d/" % server.server_address[1]) is not None
"""
COBERTURA = """<?xml version="1.0" ?>
<coverage version="7.4"><sources><source>{root}</source></sources><packages><package name="p"><classes>
<class name="client.py" filename="pyclient/client.py"><lines>
<line number="1" hits="1"/><line number="4" hits="1"/><line number="5" hits="1"/><line number="6" hits="1"/>
</lines></class>
<class name="test_client.py" filename="tests/integration/test_client.py"><lines>
<line number="10" hits="1"/><line number="11" hits="0"/><line number="12" hits="0"/><line number="13" hits="0"/>
<line number="14" hits="0"/><line number="15" hits="0"/><line number="16" hits="0"/><line number="17" hits="0"/>
</lines></class>
</classes></package></packages></coverage>
"""


@NEEDS_GO
def test_python_advice_is_pythonic_and_go_gaps_of_a_go_change_come_first(make_repo) -> None:
    repo = make_repo({
        "go.mod": "module example.com/app\n", "internal/api/client.go": GO_CLIENT,
        "test/integration/client_test.go": GO_TEST, "pyclient/__init__.py": "", "pyclient/client.py": PY_CLIENT,
        "tests/integration/test_client.py": PY_TEST,
    })  # fmt: skip
    git(repo, "checkout", "-q", "-b", "feature")
    client = repo / "internal" / "api" / "client.go"
    client.write_text(client.read_text().replace("\t\treturn 0, err\n", "\t\treturn -1, err\n"))
    commit_all(repo, "api: -1 on error")
    cov = repo / ".itest"
    cov.mkdir(exist_ok=True)
    (cov / "c.out").write_text(
        "mode: set\nexample.com/app/internal/api/client.go:5.52,7.16 2 1\n"
        "example.com/app/internal/api/client.go:7.16,9.3 1 0\nexample.com/app/internal/api/client.go:10.2,10.29 1 1\n"
    )
    (cov / "coverage.xml").write_text(COBERTURA.format(root=repo))
    result = find_coverage_gaps(open_project(repo), [".itest/c.out", ".itest/coverage.xml"], base="main")
    missing = {(s.suite, s.scenario): s.suggestion for s in result.scenarios if s.suggestion is not None}
    assert ("python", "concurrency") in missing and ("go", "context-cancellation") in missing
    # Before: "exercise server (tests/integration/test_client.py:9)", the fixture.
    for suggestion in missing.values():
        assert suggestion.function_location is None or not is_test_path(suggestion.function_location)
    assert all(not is_test_path(f.file) for f in result.uncovered_functions)
    for (suite, _id), suggestion in missing.items():
        if suite == "python":
            assert not any(w in suggestion.how for w in ("goroutine", "-race", "context.Canceled")), suggestion.how
    assert "threads" in missing[("python", "concurrency")].how
    # Neither the Go nor the Python client takes a context: cancellation is by timeout.
    for suite in ("go", "python"):
        assert "timeout" in missing[(suite, "context-cancellation")].how
        assert "context.Canceled" not in missing[(suite, "context-cancellation")].how
    assert missing[("python", "malformed-payload")].function == "fetch"
    # A Go-only change: every Go scenario gap ranks before any Python one.
    suites = [g.what.split("(")[-1].split(")")[0] for g in result.top_gaps if g.kind == "missing-scenario"]
    assert "go" in suites
    assert suites == sorted(suites, key=lambda s: s != "go"), suites
