"""Helpers of the benchmark scripts: wall time and peak memory of a whole process tree.

A dask LocalCluster runs its work in child processes, so the peak resident memory of the
parent alone says little; :class:`PeakMemory` samples the summed RSS of the process and all of
its descendants (scheduler, nannies, workers) every 50 ms.
"""

from __future__ import annotations

import threading
import time

import psutil


class PeakMemory:
    """Context manager that records the peak summed RSS of this process tree, in bytes."""

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self.peak = 0
        self.wall = 0.0
        self._stop = threading.Event()

    def _sample(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for p in [me, *me.children(recursive=True)]:
                try:
                    total += p.memory_info().rss
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total)
            time.sleep(self.interval)

    def __enter__(self) -> PeakMemory:
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._t0 = time.perf_counter()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.wall = time.perf_counter() - self._t0
        self._stop.set()
        self._thread.join()
