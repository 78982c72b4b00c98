"""How much memory a compile holds: the resident memory (RSS) of this process and of the
processes it started (its compressing workers), summed. Pages the processes share (the
interpreter's libraries) count once per process, so the sum is what they cost at most.

Read from /proc (Linux), walking the tree through each thread's `children` list, so it costs
a few small reads. Elsewhere: this process's own peak, as the kernel counts it.
"""

import os
import resource
import sys
import threading
from pathlib import Path

SAMPLE_SECONDS = 0.1
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def tree_rss_bytes(pid: int | None = None) -> int:
    """The resident bytes of process `pid` (this one when None) and all its descendants now."""
    if not sys.platform.startswith("linux"):
        return _own_peak_bytes()
    total, pending = 0, [pid or os.getpid()]
    while pending:
        process = Path(f"/proc/{pending.pop()}")
        try:
            total += int((process / "statm").read_text().split()[1]) * PAGE_BYTES
            for task in (process / "task").iterdir():
                pending += map(int, (task / "children").read_text().split())
        except (OSError, ValueError):  # it ended meanwhile
            continue
    return total


def _own_peak_bytes():
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # macOS counts bytes, others KiB


class PeakMemory:
    """While open, samples tree_rss_bytes() every SAMPLE_SECONDS in a thread: `current` and
    `peak` are the latest sample and the largest (bytes)."""

    def __init__(self):
        self.current = self.peak = tree_rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self._sample_once()

    def _sample(self):
        while not self._stop.wait(SAMPLE_SECONDS):
            self._sample_once()

    def _sample_once(self):
        self.current = tree_rss_bytes()
        self.peak = max(self.peak, self.current)
