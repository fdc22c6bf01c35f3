"""Hand-built sagittal disc chains over the real range of lumbar geometry (issue 12).

A chain is the five disc centres L1/L2..L5/S1 in mm on a sagittal image (x right, y
down), built from L5/S1 upwards: per-link spacing around a per-spine base, a turn at
each of the three joints so that the bend between the L1/L2->L2/L3 and L4/L5->L5/S1
directions is the requested one, a random overall tilt and sense, annotation jitter.
Real figures (reference/rsna2024-facts.md, "Spine geometry"): neighbour spacing
p1/p50/p99 20.7/33.4/45.0 mm, bend p5/p50/p95 9.8/28.0/51.2 deg, largest distance
from the points' straight line p50/p90/p99 6.0/9.4/15.8 mm.
"""

from __future__ import annotations

import numpy as np


def chain(bend_deg: float, spacings_mm, tilt_deg: float = 20.0, sense: float = 1.0,
          jitter_mm: float = 0.0, rng: np.random.Generator | None = None,
          turns: np.ndarray | None = None, origin=(150.0, 250.0)) -> np.ndarray:
    """(5, 2) mm, L1/L2 first. spacings_mm: the four links from L5/S1 upwards;
    turns: the three joint turns (deg, summing to bend_deg), equal by default."""
    s = np.asarray(spacings_mm, float)
    t = np.full(3, bend_deg / 3.0) if turns is None else np.asarray(turns, float)
    ang = np.deg2rad(tilt_deg)
    d = np.array([np.sin(ang) * sense, -np.cos(ang)])  # L5/S1 -> L4/L5, towards the head (up)
    pts = [np.asarray(origin, float)]
    for k in range(4):
        pts.append(pts[-1] + s[k] * d)
        if k < 3:
            a = np.deg2rad(-sense * t[k])  # lordosis: the chain straightens going up
            d = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]) @ d
    mm = np.array(pts[::-1])
    if jitter_mm and rng is not None:
        mm = mm + rng.normal(0, jitter_mm, mm.shape)
    return mm


def random_chains(n: int, seed: int = 0, bend_range=(0.0, 55.0)) -> list[np.ndarray]:
    """n chains over the real ranges: bend uniform over bend_range (every bin filled),
    base spacing uniform 21-45 mm with +-8 % per link, uneven joint turns, tilt of the
    L5/S1->L4/L5 link -10..45 deg, either sense (mirrored images), 1 mm jitter."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        bend = rng.uniform(*bend_range)
        base = rng.uniform(21.0, 45.0)
        spacings = np.clip(base * (1 + rng.normal(0, 0.08, 4)), 20.0, 46.0)
        w = rng.dirichlet([4, 4, 4])
        out.append(chain(bend, spacings, tilt_deg=rng.uniform(-10, 45), sense=rng.choice([-1.0, 1.0]),
                         jitter_mm=1.0, rng=rng, turns=bend * w))
    return out
