"""Server start to `tools/list` answered over stdio: itest-mcp vs a bare MCPServer with one trivial tool.

Anchor: the bare server, measured in the same run on the same machine. Bar: ratio <= 1.3
(median wall time, itest-mcp with its tool schema cache warm, i.e. every start but the first
after an upgrade or a source change; see server/schema_cache.py).

Also printed, not part of the bar: the cold start (schema cache deleted before each start),
and CPU time (user+sys of the server process), which the other load on a shared machine
disturbs far less than wall time.

Both servers run with bytecode cached in a private PYTHONPYCACHEPREFIX, as an installed
package would: with PYTHONDONTWRITEBYTECODE=1 in the environment (as here) and a working tree
being edited, our modules would otherwise be recompiled on every start, which measures the
edit, not the server.

Usage: python bench/bench_startup.py [--rounds N]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio
from mcp import Client, StdioServerParameters

from itest_mcp.server.schema_cache import SchemaCache, cache_key, default_cache_file

BARE = """\
from mcp.server import MCPServer

app = MCPServer(name="bare")


@app.tool()
def ping() -> str:
    \"\"\"Answer pong.\"\"\"
    return "pong"


app.run("stdio")
"""


async def _time_tools_list(params: StdioServerParameters) -> float:
    started = time.perf_counter()
    async with Client(params) as client:
        await client.list_tools()
        elapsed = time.perf_counter() - started
    return elapsed


def _child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _start(params: StdioServerParameters) -> tuple[float, float]:
    """Wall time to tools/list, and the CPU the (exited and reaped) server process used."""
    cpu_before = _child_cpu()
    wall = anyio.run(_time_tools_list, params)
    return wall, _child_cpu() - cpu_before


def _ensure_warm(params: StdioServerParameters, cache_file: Path) -> None:
    """Engineers edit this tree while the bench runs: an edit makes the cache stale, so restart once to refresh it."""
    if SchemaCache(cache_file, cache_key()).load() is None:
        _start(params)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    repo = Path(__file__).resolve().parent.parent / "examples" / "demo"
    cache_file = default_cache_file()
    with tempfile.TemporaryDirectory() as tmp:
        bare_script = Path(tmp) / "bare_server.py"
        bare_script.write_text(BARE)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "pycache")
        ours = StdioServerParameters(
            command=sys.executable, args=["-m", "itest_mcp.server", "--repo", str(repo)], env=env
        )
        bare = StdioServerParameters(command=sys.executable, args=[str(bare_script)], env=env)
        series: dict[str, list[tuple[float, float]]] = {"bare": [], "warm": [], "cold": []}
        _start(bare)  # compile bytecode, warm the OS file cache, write the schema cache
        _start(ours)
        for _ in range(args.rounds):  # interleaved, so machine noise hits all alike
            series["bare"].append(_start(bare))
            _ensure_warm(ours, cache_file)
            series["warm"].append(_start(ours))
            cache_file.unlink(missing_ok=True)
            series["cold"].append(_start(ours))
        _start(ours)  # leave the schema cache warm for whoever starts next

    def med(name: str, i: int) -> float:
        return statistics.median(x[i] for x in series[name])

    labels = {
        "bare": "bare MCPServer (anchor)",
        "warm": "itest-mcp (schema cache warm)",
        "cold": "itest-mcp (schema cache cold)",
    }
    print(f"start to tools/list over stdio, {args.rounds} interleaved rounds, load avg {os.getloadavg()[0]:.1f}")
    print(f"{'':32} {'wall median':>11} {'wall min':>9} {'cpu median':>11} {'ratio wall':>11} {'ratio cpu':>10}")
    for name, label in labels.items():
        wall_min = min(x[0] for x in series[name])
        print(
            f"{label:32} {med(name, 0) * 1000:9.0f}ms {wall_min * 1000:7.0f}ms {med(name, 1) * 1000:9.0f}ms"
            f" {med(name, 0) / med('bare', 0):11.2f} {med(name, 1) / med('bare', 1):10.2f}"
        )
    ratio = med("warm", 0) / med("bare", 0)
    print(f"ratio itest-mcp / bare:  {ratio:.2f}  (bar: <= 1.30) {'OK' if ratio <= 1.3 else 'OVER'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
