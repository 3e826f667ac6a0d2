"""Peak memory of the largest process in a child's tree, measured so our own memory never counts.

The obvious figure, `ru_maxrss` from `wait4`, is wrong for small children on Linux: a child keeps the
high-water mark of the process it was forked or vforked from, so a 5 MB `pytest` started by a
300 MB server reports 300 MB. Each process's `VmHWM` (in /proc/PID/status) belongs to its own
address space and starts fresh at exec, so the tracker samples it for every process in the tree
(found through /proc/PID/task/TID/children) while the child runs. The rusage figure still counts when it
is above what the server itself had reached when it spawned the child: then it can only be the tree's.
"""

from __future__ import annotations

import os

_FIRST_S = 0.02
_MAX_S = 0.5


def own_peak_kb() -> int:
    """This process's VmHWM in KiB (0 where /proc is missing)."""
    return vm_hwm_kb("self")


def vm_hwm_kb(pid: int | str) -> int:
    """VmHWM of process `pid` (or "self") in KiB; 0 when it is gone or /proc is missing."""
    try:
        with open(f"/proc/{pid}/status", "rb") as status:
            for line in status:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _children(pid: int) -> list[int]:
    """Direct children of `pid`, from every one of its threads (a Go program forks from any thread)."""
    out: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as handle:
                out.extend(int(c) for c in handle.read().split())
        except (OSError, ValueError):
            continue
    return out


class PeakTracker:
    """Samples the tree under `root` and keeps the largest VmHWM seen; `next_interval` spaces the samples."""

    def __init__(self, root: int) -> None:
        self.root = root
        self.peak_kb = 0
        self.parent_peak_kb = own_peak_kb()  # what a child could inherit through ru_maxrss
        self._interval = _FIRST_S

    def sample(self) -> None:
        stack = [self.root]
        seen: set[int] = set()
        while stack:
            pid = stack.pop()
            if pid in seen:
                continue
            seen.add(pid)
            kb = vm_hwm_kb(pid)
            if kb > self.peak_kb:
                self.peak_kb = kb
            stack.extend(_children(pid))

    def next_interval(self) -> float:
        """Seconds to the next sample: often at first (short runs), then at most every `_MAX_S`."""
        interval = self._interval
        self._interval = min(self._interval * 1.5, _MAX_S)
        return interval

    def peak_mb(self, rusage_maxrss_kb: int | None) -> float | None:
        """The tree's peak in MB: the samples, or the rusage figure when it cannot be inherited from us."""
        peak = self.peak_kb
        if rusage_maxrss_kb is not None and rusage_maxrss_kb > self.parent_peak_kb:
            peak = max(peak, rusage_maxrss_kb)
        return round(peak / 1024.0, 1) if peak else None
