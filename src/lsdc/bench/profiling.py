"""Where the time goes: cProfile of one call, as a short list of top entries."""

from __future__ import annotations

import cProfile
import pstats
from collections.abc import Callable
from pathlib import Path


def _name(func: tuple[str, int, str]) -> str:
    filename, line, name = func
    if filename == "~":
        return name  # a built-in, e.g. <method 'acquire' ...>
    path = Path(filename)
    parts = path.parts
    if "site-packages" in parts:
        rel = "/".join(parts[parts.index("site-packages") + 1:])
    elif "lsdc" in parts:
        rel = "/".join(parts[parts.index("lsdc"):])
    else:
        rel = path.name
    return f"{rel}:{line}({name})"


def top_entries(fn: Callable[[], object], n: int = 12) -> dict[str, list[dict]]:
    """Profile one call of fn; the n entries with most own time, and the n lsdc
    functions with most cumulative time (seconds; the profiler slows calls down)."""
    prof = cProfile.Profile()
    prof.enable()
    try:
        fn()
    finally:
        prof.disable()
    stats = pstats.Stats(prof).stats  # func -> (primitive calls, calls, tottime, cumtime, callers)
    rows = [{"function": _name(f), "calls": int(v[1]), "tottime_s": round(v[2], 4), "cumtime_s": round(v[3], 4)}
            for f, v in stats.items()]
    own = sorted(rows, key=lambda r: -r["tottime_s"])[:n]
    ours = sorted((r for r in rows if r["function"].startswith("lsdc/")), key=lambda r: -r["cumtime_s"])[:n]
    return {"by_own_time": own, "lsdc_by_cumulative_time": ours}
