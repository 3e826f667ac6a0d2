"""Bench the JUnit reader (issue 4 "Bars"): speed and peak memory against junitparser and a bare iterparse loop.

    python bench/bench_junit.py                 # 1k and 100k testcases, hostile files, a 100 MB file
    python bench/bench_junit.py --big-mb 1024   # the 1 GB flat-memory run (about a minute)

Every figure is measured in a fresh subprocess (peak memory is that process's VmHWM, see peak_memory.py), after imports
and pydantic's validator building (start-up costs a server pays once). Kinds run in rounds, side by side,
best of --repeat rounds; wall and CPU time are printed (CPU time is steadier on a shared machine).

    floor           bare `lxml.etree.iterparse` loop that clears as it goes and only counts outcomes (bar: ours <= 1.5x)
    iterparse-core  the least an iterparse reader does: attributes of every testcase, siblings freed, no merging
    target-core     the same through a parser target (the approach tools/junit_target.py takes)
    ours            `parse_junit_files` as the parse_junit tool calls it: keep_tests=False, first 50 failures
                    detailed (message, location, excerpt, kind), every failure counted
    ours-all        the same with every failure detailed
    ours+tests      every failure detailed and a TestResult per test
    junitparser     `JUnitXml.fromfile` + iteration computing the same summary (bar: ours >= 2x faster, <= half
                    the peak memory)
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from peak_memory import peak_rss_bytes

KINDS = ("floor", "iterparse-core", "target-core", "ours", "ours-all", "ours+tests", "junitparser")
TOOL_MAX_FAILURES = 50  # server/tool_junit.py MAX_FAILURES: parse_junit details the first 50 failures, counts all


def generate(path: Path, cases: int, *, out_bytes: int = 0, seed: int = 4) -> None:
    """Nested suites, properties, 2% failures with multi-line messages and system-out (plus `out_bytes` per case)."""
    rnd = random.Random(seed)
    per_suite = 500
    filler = ("ok step " * 12 + "\n") * max(0, out_bytes // 97)
    with path.open("w", encoding="utf-8") as f:
        f.write('<?xml version="1.0" encoding="UTF-8"?>\n<testsuites name="bench">\n')
        for start in range(0, cases, per_suite):
            pkg = f"github.com/acme/svc/pkg{start // per_suite}"
            f.write(f'<testsuite name="{pkg}" tests="{per_suite}">\n<properties>')
            f.write('<property name="go.version" value="go1.22.3"/><property name="seed" value="7"/></properties>\n')
            f.write(f'<testsuite name="{pkg}/integration" timestamp="2024-05-14T10:00:00Z">\n')
            for i in range(start, min(cases, start + per_suite)):
                took = f"{rnd.random():.3f}"
                out = f"<system-out>{filler}</system-out>" if filler else ""
                if rnd.random() < 0.02:
                    f.write(
                        f'<testcase classname="{pkg}" name="TestCase{i}/sub_{i % 7}" time="{took}">'
                        f'<failure message="Failed">    case_test.go:{i % 400 + 1}: '
                        f"got &lt;{i}&gt;, want &lt;{i + 1}&gt;\n"
                        f"    case_test.go:{i % 400 + 2}: response body:\n        {{&quot;id&quot;: {i}}}\n</failure>"
                        f"<system-out>=== RUN   TestCase{i}\nGET /repos/acme/svc {i}\n{filler}</system-out>"
                        "</testcase>\n"
                    )
                else:
                    name = f"TestCase{i}/sub_{i % 7}"
                    f.write(f'<testcase classname="{pkg}" name="{name}" time="{took}">{out}</testcase>\n')
            f.write("</testsuite>\n</testsuite>\n")
        f.write("</testsuites>\n")


def _floor(path: Path) -> int:
    from lxml import etree

    counts: dict[str, int] = {}
    events = etree.iterparse(
        str(path), events=("end",), tag="testcase", resolve_entities=False, no_network=True, huge_tree=True
    )
    for _, el in events:
        outcome = "passed"
        for child in el:
            outcome = str(child.tag)
            break
        counts[outcome] = counts.get(outcome, 0) + 1
        el.clear()
        while el.getprevious() is not None:
            del el.getparent()[0]
    return sum(counts.values())


_BATCH = 1024


def _iterparse_core(path: Path) -> int:
    """The least an iterparse-based reader does: one event per testcase and suite (tag filter in C), the three
    attributes of every testcase read in batches, children and earlier siblings freed. No merging, no output."""
    from lxml import etree

    names: list[str | None] = []
    batch: list[etree._Element] = []
    with_children = 0

    def flush() -> None:
        names.extend([e.get("name") for e in batch])
        [e.get("classname") for e in batch]
        [e.get("time") for e in batch]
        last = batch[-1]
        parent = last.getparent()
        del parent[: parent.index(last)]
        batch.clear()

    events = etree.iterparse(
        str(path),
        events=("end",),
        tag=("testcase", "testsuite", "testsuites"),
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=True,
    )
    for _, el in events:
        if len(el):
            if batch:
                flush()
            with_children += el.tag == "testcase"
            el.clear()
            parent = el.getparent()
            if parent is not None and el.getprevious() is not None:
                del parent[: parent.index(el)]
        else:
            batch.append(el)
            if len(batch) >= _BATCH:
                flush()
    if batch:
        flush()
    return len(names) + with_children


def _target_core(path: Path) -> int:
    """The same through a parser target (what tools/junit_target.py uses): start/end/data callbacks, no tree at all."""
    from lxml import etree

    class Target:
        def __init__(self) -> None:
            self.case: dict[str, str] | None = None
            self.kids = 0
            self.plain: list[dict[str, str]] = []
            self.names: list[str | None] = []

        def start(self, tag: str, attrib: dict[str, str]) -> None:
            if tag == "testcase":
                self.case = attrib
            elif self.case is not None:
                self.kids += 1

        def end(self, tag: str) -> None:
            if tag == "testcase":
                self.plain.append(self.case)  # type: ignore[arg-type]
                if len(self.plain) >= _BATCH:
                    self.flush()
                self.case = None

        def data(self, text: str) -> None:
            pass

        def flush(self) -> None:
            self.names.extend([a.get("name") for a in self.plain])
            [a.get("classname") for a in self.plain]
            [a.get("time") for a in self.plain]
            self.plain.clear()

        def close(self) -> int:
            self.flush()
            return len(self.names)

    parser = etree.XMLParser(target=Target(), resolve_entities=False, no_network=True, load_dtd=False, huge_tree=True)
    with path.open("rb") as f:
        while chunk := f.read(1 << 16):
            parser.feed(chunk)
    return int(parser.close())


def _junitparser(path: Path) -> int:
    """The same summary through junitparser: totals, failures with message and text, the 10 slowest."""
    import heapq

    from junitparser import Error, Failure, JUnitXml, Skipped

    xml = JUnitXml.fromfile(str(path))
    totals = {"passed": 0, "failed": 0, "errors": 0, "skipped": 0}
    failures = []
    timings = []
    seen = 0
    for suite in xml:
        for case in suite:
            seen += 1
            timings.append((case.time, case.classname, case.name))
            result = case.result
            if not result:
                totals["passed"] += 1
            elif isinstance(result[0], Failure | Error):
                totals["failed" if isinstance(result[0], Failure) else "errors"] += 1
                failures.append((case.classname, case.name, result[0].message, result[0].text, case.system_out))
            elif isinstance(result[0], Skipped):
                totals["skipped"] += 1
    heapq.nlargest(10, timings)
    return seen


def _ours(path: Path, keep_tests: bool, max_failures: int | None) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from itest_mcp.tools.junit import parse_junit_files

    result = parse_junit_files([path], keep_tests=keep_tests, max_failures=max_failures)
    if result.errors:
        raise SystemExit(result.errors[0])
    return result.report.totals.attempts


def measure(kind: str, path: Path) -> dict[str, float]:
    """Run one reader once in this process; report seconds, peak RSS and what it counted."""
    # Imports are start-up cost, not reading cost: load every reader's modules before the clock starts.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import junitparser  # noqa: F401
    from lxml import etree  # noqa: F401

    from itest_mcp.tools.junit import parse_junit_files

    # Pydantic builds each model's validator on first use (defer_build): start-up cost too, paid once per
    # server process. A tiny report with a failure builds them all before the clock starts.
    warm = path.with_name("warm-up.xml")
    warm.write_text(
        '<testsuites><testsuite name="w"><testcase classname="c" name="t" time="1">'
        '<failure message="m">x_test.go:1: m</failure></testcase></testsuite></testsuites>',
        encoding="utf-8",
    )
    parse_junit_files([warm], keep_tests=True)

    base = peak_rss_bytes() / 1024 / 1024
    start = time.perf_counter()
    cpu = time.process_time()
    if kind == "floor":
        seen = _floor(path)
    elif kind == "junitparser":
        seen = _junitparser(path)
    elif kind == "iterparse-core":
        seen = _iterparse_core(path)
    elif kind == "target-core":
        seen = _target_core(path)
    elif kind == "ours":
        seen = _ours(path, keep_tests=False, max_failures=TOOL_MAX_FAILURES)
    elif kind == "ours-all":
        seen = _ours(path, keep_tests=False, max_failures=None)
    elif kind == "ours+tests":
        seen = _ours(path, keep_tests=True, max_failures=None)
    elif kind == "hostile":
        from itest_mcp.tools.junit import parse_junit_files

        result = parse_junit_files([path])
        seen = len(result.errors)
    else:
        raise SystemExit(f"unknown kind {kind}")
    seconds = time.perf_counter() - start
    cpu = time.process_time() - cpu
    peak = peak_rss_bytes() / 1024 / 1024
    return {"seconds": seconds, "cpu": cpu, "peak_mb": peak, "grew_mb": peak - base, "seen": seen}


def _once(kind: str, path: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--measure", kind, str(path)], capture_output=True, text=True, check=True
    )
    figures: dict[str, float] = json.loads(out.stdout)
    return figures


def run(kind: str, path: Path, repeat: int) -> dict[str, float]:
    best: dict[str, float] | None = None
    for _ in range(repeat):
        figures = _once(kind, path)
        if best is None or figures["seconds"] < best["seconds"]:
            best = figures
    assert best is not None
    return best


def run_side_by_side(path: Path, repeat: int) -> dict[str, dict[str, float]]:
    """Every kind once per round, rounds repeated: a busy machine slows all kinds alike. Best of each kept
    (wall and CPU time separately; on a shared machine CPU time is the steadier figure)."""
    best: dict[str, dict[str, float]] = {}
    for _ in range(repeat):
        for kind in KINDS:
            figures = _once(kind, path)
            if kind not in best:
                best[kind] = figures
            else:
                b = best[kind]
                b["seconds"] = min(b["seconds"], figures["seconds"])
                b["cpu"] = min(b["cpu"], figures["cpu"])
                b["peak_mb"] = min(b["peak_mb"], figures["peak_mb"])
    return best


def bench_sizes(tmp: Path, sizes: list[int], repeat: int) -> None:
    for cases in sizes:
        path = tmp / f"junit-{cases}.xml"
        generate(path, cases)
        size_mb = path.stat().st_size / 2**20
        print(f"\n{cases:,} testcases ({size_mb:.1f} MB), best of {repeat} rounds, each run in its own process:")
        results = run_side_by_side(path, repeat)
        for kind, r in results.items():
            print(
                f"  {kind:14s} wall {r['seconds']:6.3f} s  cpu {r['cpu']:6.3f} s  peak {r['peak_mb']:6.1f} MB"
                f"  (counted {int(r['seen']):,})"
            )
        ours, floor, jp = results["ours"], results["floor"], results["junitparser"]
        print(f"  ours = parse_junit as the tool calls it (first {TOOL_MAX_FAILURES} failures detailed, all counted)")
        for clock in ("seconds", "cpu"):
            label = "wall" if clock == "seconds" else "cpu "
            print(
                f"  {label} vs junitparser: {jp[clock] / ours[clock]:.2f}x faster (bar >= 2x);  "
                f"vs floor: {ours[clock] / floor[clock]:.2f}x (bar <= 1.5x);  every failure detailed: "
                f"{results['ours-all'][clock] / floor[clock]:.2f}x;  every TestResult built: "
                f"{results['ours+tests'][clock] / floor[clock]:.2f}x;  iterparse core "
                f"{results['iterparse-core'][clock] / floor[clock]:.2f}x, target core "
                f"{results['target-core'][clock] / floor[clock]:.2f}x"
            )
        print(f"  peak memory {ours['peak_mb'] / jp['peak_mb']:.2f} of junitparser's (bar <= 0.5)")


def bench_hostile(tmp: Path) -> None:
    laughs = tmp / "lolz.xml"
    entities = "".join(f' <!ENTITY lol{i} "{"".join(f"&lol{i - 1};" for _ in range(10))}">\n' for i in range(1, 10))
    laughs.write_text(
        f'<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol0 "lol">\n{entities}]>\n'
        '<testsuites><testsuite name="&lol9;"><testcase name="&lol9;"/></testsuite></testsuites>\n'
    )
    xxe = tmp / "xxe.xml"
    xxe.write_text(
        '<?xml version="1.0"?>\n<!DOCTYPE t [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
        '<testsuites><testsuite name="&xxe;"/></testsuites>\n'
    )
    print("\nhostile files (refused; time and memory the call itself added):")
    for path in (laughs, xxe):
        r = run("hostile", path, 3)
        ok = r["seconds"] < 0.2 and r["grew_mb"] < 50
        print(
            f"  {path.name:9s} {r['seconds'] * 1000:7.2f} ms  +{r['grew_mb']:.1f} MB  "
            f"refused={int(r['seen']) == 1}  (bar < 200 ms, < 50 MB: {'met' if ok else 'MISSED'})"
        )


def bench_big(tmp: Path, big_mb: int) -> None:
    """Same number of tests, 10x the bytes: flat memory means the peak does not follow the file size."""
    cases = 20_000
    print(f"\nflat memory: {cases:,} testcases with large <system-out>, file sizes {big_mb // 10} MB and {big_mb} MB:")
    for mb in (big_mb // 10, big_mb):
        path = tmp / f"big-{mb}.xml"
        generate(path, cases, out_bytes=mb * 2**20 // cases)
        r = run("ours", path, 1)
        print(
            f"  {path.stat().st_size / 2**20:7.0f} MB file: {r['seconds']:6.1f} s "
            f"({path.stat().st_size / 2**20 / r['seconds']:.0f} MB/s), peak {r['peak_mb']:.1f} MB"
        )
        path.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--measure", nargs=2, metavar=("KIND", "FILE"), help=argparse.SUPPRESS)
    parser.add_argument("--repeat", type=int, default=5, help="rounds, best of each kept (default 5)")
    parser.add_argument("--big-mb", type=int, default=100, help="size of the flat-memory file (default 100)")
    parser.add_argument("--sizes", default="1000,100000", help="testcase counts (default 1000,100000)")
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure[0], Path(args.measure[1]))))
        return
    with tempfile.TemporaryDirectory(prefix="bench-junit-") as tmp:
        bench_sizes(Path(tmp), [int(s) for s in args.sizes.split(",")], args.repeat)
        bench_hostile(Path(tmp))
        if args.big_mb:
            bench_big(Path(tmp), args.big_mb)


if __name__ == "__main__":
    main()
