"""The HTML report: self-contained, loads in headless Chromium without console errors, tables sort."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from helpers_history import NOW, factory

from itest_mcp.tools import history
from itest_mcp.tools.models import Outcome
from itest_mcp.tools.repo import Project, open_project
from itest_mcp.tools.report import build_report
from itest_mcp.tools.report_html import render_html

# Injected before the page's own script: records any error, then (after our sort script ran)
# clicks the Duration header of the slowest-tests table and checks that the rows were re-ordered.
PROBE = """<script>
window.__errors = [];
window.addEventListener('error', function (e) { window.__errors.push(String(e.message)); });
window.addEventListener('load', function () {
  try {
    var table = document.querySelectorAll('#summary table.sortable')[1];
    var th = table.tHead.rows[0].cells[3];
    th.click();
    var first = table.tBodies[0].rows[0].cells[3].getAttribute('data-sort');
    th.click();
    var again = table.tBodies[0].rows[0].cells[3].getAttribute('data-sort');
    if (!(parseFloat(first) < parseFloat(again))) {
      window.__errors.push('sort did not reorder: ' + first + ' ' + again);
    }
    if (document.documentElement.getAttribute('data-ready') !== '1') {
      window.__errors.push('report script did not run');
    }
    if (document.querySelectorAll('svg').length < 3) { window.__errors.push('charts missing'); }
  } catch (err) { window.__errors.push('probe: ' + err); }
  document.title = window.__errors.length ? 'errors: ' + window.__errors.join(' | ') : 'ok';
});
</script>"""


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture
def report_html(make_repo, tmp_path: Path) -> tuple[Project, str]:  # type: ignore[no-untyped-def]
    project = open_project(make_repo({"README.md": "x\n"}))
    for i in range(8):
        tests = [factory.make_test(f"TestFast{j}", duration=0.01 * (j + 1)) for j in range(30)]
        tests += [
            factory.make_test("TestSlowPagination", duration=1.5 + (1.5 if i == 7 else 0.0)),
            factory.make_test(
                "TestFlaky",
                Outcome.FLAKY if i % 3 == 0 else Outcome.PASSED,
                attempts=[(Outcome.FAILED, 0.2, "got 0 items"), (Outcome.PASSED, 0.2, None)] if i % 3 == 0 else None,
            ),
            factory.make_test(
                "TestDefault<Branch>",
                Outcome.FAILED,
                message='default branch = "master", want "main" </script><b>x</b>',
                file="test/integration/api_test.go",
                line=61,
            ),
        ]
        run = factory.make_run(i, tests, phase="integration" if i % 2 else "network")
        history.write_run_folder(project, run)
        history.record_run(project, run)
    report = build_report(project, [factory.run_id_at(6, "network"), factory.run_id_at(7, "integration")], now=NOW)
    return project, render_html(report)


def test_html_is_self_contained_and_escaped(report_html: tuple[Project, str]) -> None:
    _, html = report_html
    assert html.startswith("<!DOCTYPE html>")
    for section in ("Test Execution Summary", "Critical Findings", "Coverage Analysis", "Recommendations"):
        assert f"<h2>{section}</h2>" in html
    # nothing is fetched at view time
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", html)
    assert "@import" not in html and "url(" not in html
    assert "default-src 'none'" in html
    # untrusted text (test names, messages) is escaped, never markup
    assert "<b>x</b>" not in html and "&lt;/script&gt;&lt;b&gt;x&lt;/b&gt;" in html
    assert "TestDefault&lt;Branch&gt;" in html
    assert html.count("<svg") == 3 and "Failure and flaky rate per run" in html


def test_html_loads_in_headless_chromium_without_errors(report_html: tuple[Project, str], tmp_path: Path) -> None:
    chromium = _chromium()
    if chromium is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is not installed; CI must run `apt-get install -y chromium` first")
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    _, html = report_html
    page = tmp_path / "report.html"
    page.write_text(html.replace("<head>", "<head>" + PROBE, 1), encoding="utf-8")
    shot = tmp_path / "report.png"
    common = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--enable-logging=stderr",
        "--v=0",
        "--window-size=1280,2000",
    ]
    dom = subprocess.run(
        [*common, f"--user-data-dir={tmp_path / 'profile1'}", "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    title = re.search(r"<title>(.*?)</title>", dom.stdout, flags=re.DOTALL)
    assert title is not None and title.group(1) == "ok", title.group(1) if title else dom.stdout[:500]
    console_errors = [
        line for line in dom.stderr.splitlines() if "CONSOLE" in line and ("Uncaught" in line or "Error" in line)
    ]
    assert console_errors == []
    shot_run = subprocess.run(
        [*common, f"--user-data-dir={tmp_path / 'profile2'}", f"--screenshot={shot}", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shot_run.returncode == 0, shot_run.stderr[-2000:]
    assert shot.is_file() and shot.stat().st_size > 20_000
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
