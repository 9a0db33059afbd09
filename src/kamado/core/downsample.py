"""Thin a long series to a few points that still draw the same curve: Largest-Triangle-Three-Buckets.

Why LTTB (Steinarsson, 2013) and not every k-th point: striding drops exactly the spikes and dips a person
looks at a loss curve for. LTTB keeps, from each bucket, the point that makes the largest triangle with the
point kept before it and the average of the next bucket, so extremes survive; it is one O(n) pass. The
console runs the same algorithm in the browser (``web/static/js/downsample.js``); doing it on the server as
well means a 100,000-point series crosses the wire as a thousand points instead of megabytes of JSON.

Pure and standard-library only: it knows nothing of metrics, HTTP or the store.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

#: Fewer than this cannot be thinned meaningfully: the first and the last point are always kept.
MIN_POINTS = 2
#: The most an API caller may ask for per series: more is no longer "a chart's worth".
MAX_POINTS_LIMIT = 10_000


def lttb_indices(xs: Sequence[float], ys: Sequence[float], threshold: int) -> list[int]:
    """Indices (ascending) of at most ``threshold`` points of the series ``(xs, ys)`` that keep its shape.

    The first and the last point are always kept. A series no longer than ``threshold`` is returned whole;
    ``threshold == 2`` keeps just its two ends. ``xs`` should be ascending (steps, or positions); duplicated
    xs or points are fine. Non-finite ``ys`` (NaN, inf) never outweigh a finite point: they are left out of
    the bucket averages and chosen only for a bucket that holds nothing else, so a gap in the data stays a
    gap instead of turning every triangle's area into NaN.
    """
    n = len(xs)
    if len(ys) != n:
        raise ValueError(f"xs and ys differ in length ({n} and {len(ys)})")
    if threshold < MIN_POINTS:
        raise ValueError(f"threshold must be at least {MIN_POINTS} (the first and last point), got {threshold}")
    if n <= threshold:
        return list(range(n))
    if threshold == MIN_POINTS:
        return [0, n - 1]
    finite = [math.isfinite(y) for y in ys]
    every = (n - 2) / (threshold - 2)
    kept = [0]
    anchor = 0 if finite[0] else -1  # the last kept point with a finite y: the triangles' first corner
    for i in range(threshold - 2):
        # The next bucket's average (the triangles' third corner); the last bucket's "next" is the end point.
        nxt_start = int((i + 1) * every) + 1
        nxt_end = min(int((i + 2) * every) + 1, n)
        sx = sy = 0.0
        count = 0
        for j in range(nxt_start, nxt_end):
            if finite[j]:
                sx += xs[j]
                sy += ys[j]
                count += 1
        if count:
            avg_x, avg_y = sx / count, sy / count
        else:  # a bucket of gaps: aim at the end point (or stay level if that is a gap too)
            avg_x = xs[n - 1]
            avg_y = ys[n - 1] if finite[n - 1] else (ys[anchor] if anchor >= 0 else 0.0)
        start = int(i * every) + 1
        end = int((i + 1) * every) + 1
        best, best_area = start, -1.0
        if anchor >= 0:
            ax, ay = xs[anchor], ys[anchor]
            for j in range(start, end):
                if finite[j]:
                    area = abs((ax - avg_x) * (ys[j] - ay) - (ax - xs[j]) * (avg_y - ay))
                    if area > best_area:
                        best, best_area = j, area
        else:  # nothing finite kept yet: the point farthest from the next bucket's level
            for j in range(start, end):
                if finite[j]:
                    area = abs(ys[j] - avg_y)
                    if area > best_area:
                        best, best_area = j, area
        kept.append(best)
        if finite[best]:
            anchor = best
    kept.append(n - 1)
    return kept


@dataclass(frozen=True)
class Thinned:
    """What :func:`thin_series` kept of an interleaved list of points."""

    #: Indices into the input, ascending: the input's order survives.
    kept: list[int]
    #: For each kept point, its position within its own series (the x a step-less series is drawn at).
    position: list[int]
    #: Points per series before thinning, by key.
    totals: dict[str, int]


def thin_series(keys: Sequence[str], steps: Sequence[int | None], values: Sequence[float], max_points: int) -> Thinned:
    """Thin every series in an interleaved list of points (``keys[i]`` names the series of point ``i``) to at
    most ``max_points`` points each with :func:`lttb_indices`.

    A series is laid out along its steps when every point has one, else along its positions (the order the
    points were recorded), the same rule the console draws by.
    """
    members: dict[str, list[int]] = {}
    for i, key in enumerate(keys):
        members.setdefault(key, []).append(i)
    kept: list[tuple[int, int]] = []
    for idx in members.values():
        series_steps = [steps[i] for i in idx]
        xs: list[float] = (
            [float(s) for s in series_steps if s is not None]
            if all(s is not None for s in series_steps)
            else [float(p) for p in range(len(idx))]
        )
        for pos in lttb_indices(xs, [values[i] for i in idx], max_points):
            kept.append((idx[pos], pos))
    kept.sort()
    return Thinned([k for k, _ in kept], [p for _, p in kept], {key: len(idx) for key, idx in members.items()})
