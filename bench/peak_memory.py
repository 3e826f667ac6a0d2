"""Peak resident memory of the calling process, for benches that measure in a fresh subprocess.

`ru_maxrss` is not that on Linux: a child started with fork+exec keeps the high-water mark of the
parent it was forked from (a child of a 300 MB bench process reports 311 MB after doing nothing).
`VmHWM` in /proc/self/status belongs to the process's own address space, so it starts fresh at exec.
"""

from __future__ import annotations

import resource
import sys

from itest_mcp.tools.proctree import own_peak_kb


def peak_rss_bytes() -> int:
    """This process's peak RSS: VmHWM where /proc has it, else ru_maxrss (KiB on Linux, bytes on macOS)."""
    kb = own_peak_kb()
    if kb:
        return kb * 1024
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024
