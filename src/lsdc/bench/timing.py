"""Timing and memory helpers shared by the benchmarks.

Every comparison runs its contenders interleaved (A, B, A, B, ...) in the same process
and run, so that load from other processes on a shared machine hits both alike; figures
are medians over the repeats. Peak memory is the resident set of a whole process tree
(the process and its worker processes together), sampled by a background thread.
"""

from __future__ import annotations

import logging
import os
import platform
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


def median(values: list[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def interleaved(contenders: dict[str, Callable[[], object]], repeats: int, warmup: bool = True,
                cpu: dict[str, list[float]] | None = None) -> dict[str, list[float]]:
    """Seconds per call of each contender, `repeats` rounds, the contenders alternating
    within each round (their order reversed every other round). One untimed warm-up
    call each first (imports, caches, lazy model set-up) unless `warmup` is False.
    `cpu`, when given, receives this process's CPU seconds per call (less sensitive to
    other load than wall time; excludes work done in worker processes)."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    names = list(contenders)
    if warmup:
        for name in names:
            contenders[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(repeats):
        for name in (names if r % 2 == 0 else names[::-1]):
            start, cpu_start = time.perf_counter(), time.process_time()
            contenders[name]()
            times[name].append(time.perf_counter() - start)
            if cpu is not None:
                cpu.setdefault(name, []).append(time.process_time() - cpu_start)
            log.debug("%s: %.3f s", name, times[name][-1])
    return times


def cpu_seconds() -> float:
    """User + system CPU time of this process and its waited-for children."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


@dataclass
class TreeMemory:
    """Peak summed RSS (MB) of a process and all its descendants, sampled every
    `interval` s while the context is open. `pid` None = this process."""

    pid: int | None = None
    interval: float = 0.1
    peak_mb: float = 0.0
    samples: int = 0
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    def sample(self) -> float:
        import psutil

        try:
            root = psutil.Process(self.pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return 0.0
        total = 0
        for p in procs:
            try:
                total += p.memory_info().rss
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        return total / 2**20

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_mb = max(self.peak_mb, self.sample())
            self.samples += 1
            self._stop.wait(self.interval)

    def __enter__(self) -> TreeMemory:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="tree-memory", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.peak_mb = max(self.peak_mb, self.sample())


def machine() -> dict[str, object]:
    """What the figures were measured on."""
    import psutil
    import torch

    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return {
        "cpus": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "load_average_1min_at_start": round(load[0], 2),
    }
