"""The report as one self-contained HTML page: inline CSS, inline JS, SVG charts drawn here.

Nothing is fetched at view time (no fonts, scripts or images from anywhere), so the
file can be attached to a CI run or mailed and still opens offline. Charts: phase
durations, the slowest tests, and the failure/flaky-rate trend from history.
Every table sorts by clicking its header.
"""

from __future__ import annotations

from html import escape

from .flaky import TrendPoint
from .report_markdown import RECOMMENDATION_GROUPS, empty_recommendation_reason
from .report_model import SECTIONS, Finding, Report, SlowTestEntry
from .report_sections import performance_rule

STATUS_COLOURS = {
    "passed": "#2e7d32",
    "failed": "#c62828",
    "error": "#ad1457",
    "timeout": "#ef6c00",
    "cancelled": "#6d4c41",
}

CSS = """
:root{--fg:#1d2330;--muted:#5b6475;--line:#d9dee7;--bg:#fff;--band:#f5f7fa;--accent:#1565c0}
*{box-sizing:border-box}
body{font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg);
margin:0 auto;max-width:1180px;padding:24px}
h1{font-size:24px;margin:0 0 4px}
h2{font-size:19px;margin:32px 0 8px;border-bottom:2px solid var(--line);padding-bottom:4px}
h3{font-size:15px;margin:20px 0 6px}.meta{color:var(--muted);margin:0 0 16px}
code,pre{font:12px/1.45 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
pre{background:var(--band);border:1px solid var(--line);padding:8px;overflow:auto;max-height:260px;margin:6px 0}
table{border-collapse:collapse;width:100%;margin:8px 0}
th,td{border-bottom:1px solid var(--line);padding:5px 8px;text-align:left;vertical-align:top}
th{background:var(--band);cursor:pointer;user-select:none;white-space:nowrap}
th.sorted-asc::after{content:" \\25B2"}th.sorted-desc::after{content:" \\25BC"}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.status{display:inline-block;border-radius:3px;padding:0 6px;color:#fff;font-size:12px}
.cards{display:flex;gap:12px;flex-wrap:wrap;margin:12px 0}
.card{border:1px solid var(--line);border-radius:6px;padding:8px 14px;min-width:120px}
.card b{display:block;font-size:20px}.card span{color:var(--muted);font-size:12px}
.charts{display:grid;grid-template-columns:1fr 1fr;gap:16px;align-items:start}
.chart{border:1px solid var(--line);border-radius:6px;padding:8px}
.chart h3{margin:0 0 6px}.empty{color:var(--muted);font-style:italic}
.cause{font-weight:600}.evidence{color:var(--muted);font-size:12px}
ol li,ul li{margin:3px 0}
svg text{font:11px system-ui,sans-serif;fill:var(--fg)}
@media (max-width:900px){.charts{grid-template-columns:1fr}}
"""

JS = """
(function(){
  function key(cell){
    var v = cell.getAttribute('data-sort');
    if (v === null) { v = cell.textContent.trim(); }
    var n = parseFloat(v);
    return (!isNaN(n) && isFinite(v)) ? n : v.toLowerCase();
  }
  function sortBy(table, index, th){
    var body = table.tBodies[0];
    if (!body) { return; }
    var rows = Array.prototype.slice.call(body.rows);
    var desc = th.className.indexOf('sorted-asc') !== -1;
    Array.prototype.forEach.call(th.parentNode.children, function(h){
      h.className = h.className.replace(/ ?sorted-(asc|desc)/g, '');
    });
    th.className += desc ? ' sorted-desc' : ' sorted-asc';
    rows.sort(function(a, b){
      var x = key(a.cells[index]), y = key(b.cells[index]);
      var r = (typeof x === typeof y) ? (x < y ? -1 : x > y ? 1 : 0) : (typeof x === 'number' ? -1 : 1);
      return desc ? -r : r;
    });
    rows.forEach(function(r){ body.appendChild(r); });
  }
  Array.prototype.forEach.call(document.querySelectorAll('table.sortable'), function(table){
    var head = table.tHead;
    if (!head) { return; }
    Array.prototype.forEach.call(head.rows[0].cells, function(th, i){
      th.setAttribute('title', 'sort');
      th.addEventListener('click', function(){ sortBy(table, i, th); });
    });
  });
  document.documentElement.setAttribute('data-ready', '1');
})();
"""


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _status(value: str) -> str:
    colour = STATUS_COLOURS.get(value, "#455a64")
    return f'<span class="status" style="background:{colour}">{_e(value)}</span>'


def _bar_chart(rows: list[tuple[str, float, str, str]], unit: str = "s", width: int = 540) -> str:
    """Horizontal bars: (label, value, colour, tooltip)."""
    if not rows:
        return '<p class="empty">no data</p>'
    label_w, bar_h, gap = 190, 18, 6
    top = 4
    height = top + len(rows) * (bar_h + gap) + 18
    peak = max(v for _, v, _, _ in rows) or 1.0
    span = width - label_w - 60
    parts = [f'<svg role="img" width="100%" viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">']
    for i, (label, value, colour, tip) in enumerate(rows):
        y = top + i * (bar_h + gap)
        w = max(1.0, value / peak * span)
        short = label if len(label) <= 30 else label[:29] + "…"
        parts.append(
            f"<g><title>{_e(tip)}</title>"
            f'<text x="{label_w - 6}" y="{y + 13}" text-anchor="end">{_e(short)}</text>'
            f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h}" rx="2" fill="{colour}"></rect>'
            f'<text x="{label_w + w + 4:.1f}" y="{y + 13}">{value:.2f} {unit}</text></g>'
        )
    axis_y = top + len(rows) * (bar_h + gap)
    parts.append(
        f'<line x1="{label_w}" y1="{axis_y}" x2="{label_w + span}" y2="{axis_y}" stroke="#d9dee7"></line>'
        f'<text x="{label_w}" y="{axis_y + 13}">0</text>'
        f'<text x="{label_w + span}" y="{axis_y + 13}" text-anchor="end">{peak:.2f} {unit}</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


def _trend_chart(points: list[TrendPoint], width: int = 540, height: int = 220) -> str:
    if not points:
        return '<p class="empty">no history yet: the trend appears once runs are recorded</p>'
    left, right, top, bottom = 44, 12, 12, 36
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max(max(p.flaky_rate, p.failure_rate) for p in points)
    peak = max(peak, 0.05)
    n = len(points)

    def x(i: int) -> float:
        return left + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)

    def y(v: float) -> float:
        return top + plot_h - v / peak * plot_h

    parts = [f'<svg role="img" width="100%" viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">']
    for frac in (0.0, 0.5, 1.0):
        yy = y(peak * frac)
        parts.append(
            f'<line x1="{left}" y1="{yy:.1f}" x2="{left + plot_w}" y2="{yy:.1f}" stroke="#eceff4"></line>'
            f'<text x="{left - 4}" y="{yy + 4:.1f}" text-anchor="end">{peak * frac:.0%}</text>'
        )
    for series, colour, label in (("failure_rate", "#c62828", "failure rate"), ("flaky_rate", "#ef6c00", "flaky rate")):
        coords = " ".join(f"{x(i):.1f},{y(getattr(p, series)):.1f}" for i, p in enumerate(points))
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{coords}"></polyline>')
        for i, p in enumerate(points):
            value = getattr(p, series)
            tip = f"{p.run_id} ({p.phase}): {label} {value:.1%} — {p.failed} failed, {p.flaky} flaky of {p.tests}"
            parts.append(
                f'<circle cx="{x(i):.1f}" cy="{y(value):.1f}" r="3" fill="{colour}"><title>{_e(tip)}</title></circle>'
            )
    parts.append(
        f'<text x="{left}" y="{height - 18}">{_e(points[0].run_id)}</text>'
        f'<text x="{left + plot_w}" y="{height - 18}" text-anchor="end">{_e(points[-1].run_id)}</text>'
        f'<rect x="{left}" y="{height - 12}" width="10" height="4" fill="#c62828"></rect>'
        f'<text x="{left + 14}" y="{height - 6}">failure rate</text>'
        f'<rect x="{left + 100}" y="{height - 12}" width="10" height="4" fill="#ef6c00"></rect>'
        f'<text x="{left + 114}" y="{height - 6}">flaky rate</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


def _table(head: list[tuple[str, bool]], rows: list[list[tuple[str, str | None, bool]]]) -> str:
    """A sortable table; head = (title, numeric); cell = (html, sort key or None, numeric)."""
    out = ['<table class="sortable"><thead><tr>']
    out += [f'<th class="num">{_e(t)}</th>' if num else f"<th>{_e(t)}</th>" for t, num in head]
    out.append("</tr></thead><tbody>")
    for row in rows:
        out.append("<tr>")
        for cell, sort, num in row:
            attr = f' data-sort="{_e(sort)}"' if sort is not None else ""
            cls = ' class="num"' if num else ""
            out.append(f"<td{cls}{attr}>{cell}</td>")
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _findings_list(items: list[Finding], empty: str) -> str:
    if not items:
        return f'<p class="empty">{_e(empty)}</p>'
    lis = []
    for f in items:
        run = f" <code>{_e(f.run_id)}</code>" if f.run_id else ""
        detail = f" — {_e(f.detail)}" if f.detail else ""
        src = f' <span class="evidence">({_e(f.source)})</span>' if f.source else ""
        lis.append(f"<li>{_e(f.title)}{detail}{run}{src}</li>")
    return "<ul>" + "".join(lis) + "</ul>"


def _slow_rows(entries: list[SlowTestEntry]) -> list[tuple[str, float, str, str]]:
    return [
        (e.name, e.duration_s, "#1565c0", f"{e.name} ({e.phase}, {e.run_id}): {e.duration_s:.3f} s") for e in entries
    ]


def render_html(report: Report) -> str:
    """The report as one self-contained HTML document."""
    s, f, c = report.summary, report.findings, report.coverage
    t = s.totals
    commit = report.commit[:12] if report.commit else "no commit"
    h: list[str] = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        # No network at view time: forbid every fetch except our own inline code and data.
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">",
        f"<title>Integration test report {_e(report.report_id)}</title>",
        f"<style>{CSS}</style></head><body>",
        "<h1>Integration test report</h1>",
        f'<p class="meta">Project <code>{_e(report.project_root)}</code> · commit <code>{_e(commit)}</code> · '
        f"{len(report.run_ids)} run(s) ({_e(report.selection)}) · "
        f"{_e(report.created_at.strftime('%Y-%m-%d %H:%M:%S %Z').strip())} · <code>{_e(report.report_id)}</code></p>",
    ]
    # 1. Test Execution Summary
    pass_rate = "n/a" if s.pass_rate is None else f"{s.pass_rate:.1%}"
    h.append(f'<section id="summary"><h2>{_e(SECTIONS[0])}</h2><div class="cards">')
    for value, label in (
        (str(len(s.runs)), "runs"),
        (f"{s.total_duration_s:.1f} s", "total time"),
        (str(t.tests), "tests"),
        (str(t.passed), "passed"),
        (str(t.failed + t.errors), "failed / errors"),
        (str(t.skipped), "skipped"),
        (str(t.flaky), "flaky"),
        (pass_rate, "pass rate"),
    ):
        h.append(f'<div class="card"><b>{_e(value)}</b><span>{_e(label)}</span></div>')
    h.append("</div>")
    h.append(
        _table(
            [
                ("Phase", False),
                ("Run", False),
                ("Status", False),
                ("Tests", True),
                ("Passed", True),
                ("Failed", True),
                ("Errors", True),
                ("Skipped", True),
                ("Flaky", True),
                ("Duration (s)", True),
            ],
            [
                [
                    (_e(r.phase), None, False),
                    (f"<code>{_e(r.run_id)}</code>{' (dirty tree)' if r.dirty else ''}", r.run_id, False),
                    (_status(r.status.value), r.status.value, False),
                    (str(r.totals.tests), None, True),
                    (str(r.totals.passed), None, True),
                    (str(r.totals.failed), None, True),
                    (str(r.totals.errors), None, True),
                    (str(r.totals.skipped), None, True),
                    (str(r.totals.flaky), None, True),
                    (f"{r.duration_s:.2f}", f"{r.duration_s}", True),
                ]
                for r in s.runs
            ],
        )
    )
    for note in s.covered:
        h.append(f"<p>Not run separately: {_e(note)}.</p>")
    if s.github:
        h.append(f"<p>GitHub API: {_e(s.github)}.</p>")
    phase_rows = [
        (
            f"{r.phase} · {r.run_id.rsplit('-', 1)[-1]}",
            r.duration_s,
            STATUS_COLOURS.get(r.status.value, "#455a64"),
            f"{r.phase} ({r.run_id}): {r.status.value}, {r.duration_s:.2f} s, {r.totals.tests} tests",
        )
        for r in s.runs
    ]
    h.append('<div class="charts">')
    h.append(f'<div class="chart" id="chart-phases"><h3>Phase durations</h3>{_bar_chart(phase_rows)}</div>')
    h.append(f'<div class="chart" id="chart-slowest"><h3>Slowest tests</h3>{_bar_chart(_slow_rows(s.slowest))}</div>')
    h.append("</div>")
    if s.slowest:
        h.append("<h3>Slowest tests</h3>")
        h.append(
            _table(
                [("Test", False), ("Phase", False), ("Run", False), ("Duration (s)", True), ("Share of phase", True)],
                [
                    [
                        (
                            f"<code>{_e(e.name)}</code>"
                            + (f"<br><small>its subtest {_e(e.subtest)}</small>" if e.subtest else ""),
                            e.name,
                            False,
                        ),
                        (_e(e.phase), None, False),
                        (f"<code>{_e(e.run_id)}</code>", e.run_id, False),
                        (f"{e.duration_s:.2f}", f"{e.duration_s}", True),
                        (
                            f"{e.share_of_phase:.0%}" if e.share_of_phase is not None else "",
                            f"{e.share_of_phase or 0}",
                            True,
                        ),
                    ]
                    for e in s.slowest
                ],
            )
        )
    h.append("</section>")
    # 2. Critical Findings
    h.append(f'<section id="findings"><h2>{_e(SECTIONS[1])}</h2>')
    h.append(f"<h3>Failures ({len(f.failures) + f.failures_omitted})</h3>")
    if f.failures:
        h.append("<p>By cause: " + ", ".join(f"{_e(k)} {v}" for k, v in f.causes.items()) + ".</p>")
        h.append(
            _table(
                [
                    ("Test", False),
                    ("Cause", False),
                    ("Location", False),
                    ("Phase", False),
                    ("Run", False),
                    ("Attempts", True),
                    ("Message", False),
                ],
                [
                    [
                        (f"<code>{_e(i.test)}</code>", i.test, False),
                        (f'<span class="cause">{_e(i.cause.value)}</span>', i.cause.value, False),
                        (f"<code>{_e(i.location)}</code>" if i.location else "", i.location or "", False),
                        (_e(", ".join(i.phases or [i.phase])), None, False),
                        (f"<code>{_e(i.run_id)}</code>", i.run_id, False),
                        (str(i.attempts), None, True),
                        (_e(i.message[:300]), None, False),
                    ]
                    for i in f.failures
                ],
            )
        )
        for i in f.failures:
            h.append(
                f"<details><summary><code>{_e(i.test)}</code> — {_e(i.cause.value)}</summary>"
                f'<p class="evidence">why {_e(i.cause.value)}: {_e(i.cause_evidence)}'
                + (f"; history: {_e(i.history)}" if i.history else "")
                + (f"; seen in runs {_e(', '.join(i.seen_in))}" if len(i.seen_in) > 1 else "")
                + "</p>"
                + (f"<pre>{_e(i.excerpt)}</pre>" if i.excerpt else "")
                + "</details>"
            )
    else:
        h.append(f'<p class="empty">No failing tests in {len(s.runs)} run(s) ({t.tests} tests).</p>')
    h.append(f"<h3>Performance ({len(f.performance)})</h3>")
    h.append(f'<p class="evidence">Rule: {_e(performance_rule())}.</p>')
    h.append(_findings_list(f.performance, f"No test met the rule in {len(s.runs)} run(s)."))
    h.append(f"<h3>Environment and configuration ({len(f.environment)})</h3>")
    h.append(_findings_list(f.environment, f"No environment problems in {len(s.runs)} run(s)."))
    history = report.history
    h.append('<div class="charts"><div class="chart" id="chart-trend"><h3>Failure and flaky rate per run</h3>')
    h.append(_trend_chart(history.trend if history else []))
    h.append("</div>")
    h.append('<div class="chart"><h3>Flaky and broken tests</h3>')
    flaky_stats = [*(history.flaky if history else []), *(history.broken if history else [])]
    if flaky_stats:
        h.append(
            _table(
                [("Test", False), ("Status", False), ("Failure rate", True), ("Runs", True)],
                [
                    [
                        (f"<code>{_e(st.name)}</code>", st.name, False),
                        (_e(st.status.value), None, False),
                        (f"{st.failure_rate:.0%}", f"{st.failure_rate}", True),
                        (str(st.runs), None, True),
                    ]
                    for st in flaky_stats
                ],
            )
        )
    else:
        window = f"the last {history.window} runs of each phase" if history else "these runs"
        h.append(f'<p class="empty">No flaky or broken tests in {_e(window)}.</p>')
    h.append("</div></div></section>")
    # 3. Coverage Analysis
    h.append(f'<section id="coverage"><h2>{_e(SECTIONS[2])}</h2>')
    if c.total_percent is not None:
        lines_text = f", {_e(c.total_lines)}" if c.total_lines else ""
        h.append(
            f"<p>Total coverage: <b>{c.total_percent:.1f}%</b>{lines_text} (from <code>{_e(c.source)}</code>).</p>"
        )
    elif c.total_lines:  # statements and lines, never added together: one figure per unit
        h.append(f"<p>Total coverage: {_e(c.total_lines)} (from <code>{_e(c.source)}</code>).</p>")
    if c.changed_lines_percent is not None:
        h.append(f"<p>Changed lines: <b>{c.changed_lines_percent:.1f}%</b> ({_e(c.changed_lines)}).</p>")
    if c.well_covered:
        h.append("<h3>Well covered</h3>")
        h.append(
            _table(
                [("File or package", False), ("Coverage", True)],
                [
                    [(f"<code>{_e(a.name)}</code>", a.name, False), (f"{a.percent:.1f}%", f"{a.percent}", True)]
                    for a in c.well_covered
                ],
            )
        )
    if c.gaps:
        h.append(f"<h3>Gaps ({len(c.gaps)})</h3>")
        h.append(
            _table(
                [("File", False), ("Lines", False), ("Detail", False)],
                [
                    [
                        (f"<code>{_e(g.file)}</code>", g.file, False),
                        (_e(g.lines), None, False),
                        (_e(g.detail), None, False),
                    ]
                    for g in c.gaps
                ],
            )
        )
    if c.unexercised:
        h.append("<h3>Never exercised</h3><ul>" + "".join(f"<li><code>{_e(u)}</code></li>" for u in c.unexercised))
        h.append("</ul>")
    if c.notes:
        h.append("<ul>" + "".join(f"<li>{_e(n)}</li>" for n in c.notes) + "</ul>")
    h.append("</section>")
    # 4. Recommendations
    h.append(f'<section id="recommendations"><h2>{_e(SECTIONS[3])}</h2>')
    for category, title in RECOMMENDATION_GROUPS:
        items = [r for r in report.recommendations if r.category == category]
        h.append(f"<h3>{_e(title)} ({len(items)})</h3>")
        if items:
            h.append(
                "<ol>"
                + "".join(
                    f'<li>{_e(r.text)}. <span class="evidence">Evidence: {_e(r.evidence)}</span></li>' for r in items
                )
                + "</ol>"
            )
        else:
            h.append(f'<p class="empty">None: {_e(empty_recommendation_reason(report, category))}.</p>')
    h.append("</section>")
    h.append(f"<script>{JS}</script></body></html>")
    return "\n".join(h) + "\n"
