"""Server start to `tools/list` answered over stdio: itest-mcp vs a bare MCPServer with one trivial tool.

Anchor: the bare server, measured in the same run on the same machine. Bar: ratio <= 1.3.
Usage: python bench/bench_startup.py [--rounds N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio
from mcp import Client, StdioServerParameters

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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    repo = Path(__file__).resolve().parent.parent / "examples" / "demo"
    with tempfile.TemporaryDirectory() as tmp:
        bare_script = Path(tmp) / "bare_server.py"
        bare_script.write_text(BARE)
        ours = StdioServerParameters(command=sys.executable, args=["-m", "itest_mcp.server", "--repo", str(repo)])
        bare = StdioServerParameters(command=sys.executable, args=[str(bare_script)])
        ours_times: list[float] = []
        bare_times: list[float] = []
        anyio.run(_time_tools_list, bare)  # warm the OS file cache for both
        anyio.run(_time_tools_list, ours)
        for _ in range(args.rounds):  # interleaved, so machine noise hits both alike
            bare_times.append(anyio.run(_time_tools_list, bare))
            ours_times.append(anyio.run(_time_tools_list, ours))
    bare_median = statistics.median(bare_times)
    ours_median = statistics.median(ours_times)
    ratio = ours_median / bare_median
    print(f"bare MCPServer (anchor): median {bare_median * 1000:.0f} ms over {args.rounds} rounds")
    print(f"itest-mcp:               median {ours_median * 1000:.0f} ms over {args.rounds} rounds")
    print(f"ratio itest-mcp / bare:  {ratio:.2f}  (bar: <= 1.30) {'OK' if ratio <= 1.3 else 'OVER'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
