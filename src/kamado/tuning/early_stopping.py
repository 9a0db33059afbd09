"""Which running trials to stop early, from the objective values they have reported so far.

Two rules, both pure functions of stored metric series (so they survive restarts unchanged):

- ``median_rule`` (``TrainingJobEarlyStoppingType: Auto``), as SageMaker documents it: after step k, take
  the running average of the objective up to k for every earlier trial that reached k, and the median of
  those; stop the current trial if its own running average is worse.
- ``asha_rule`` (``Strategy: Hyperband``): asynchronous successive halving. Rungs sit at MinResource * eta^i
  steps up to MaxResource; a trial that reaches a rung continues only if its value there is in the top
  1/eta of every trial that reached that rung (with fewer than eta there, only the best continues, as
  Optuna's successive-halving pruner does: otherwise the first trials always run their full budget).

A "step" is the index of a reported value (or its ``step`` when ``kamado.log_metric(..., step=)`` gives one).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

#: Trials that must have reached a step before the median rule judges anyone at that step.
MIN_PEERS = 3
ETA = 3


def _better(a: float, b: float, maximize: bool) -> bool:
    return a > b if maximize else a < b


def _running_average(series: Sequence[float], k: int) -> float:
    return sum(series[:k]) / k


def median_rule(current: Sequence[float], peers: Sequence[Sequence[float]], *, maximize: bool) -> str | None:
    """A reason to stop ``current`` (its values so far), or None. ``peers`` are earlier trials' series."""
    k = len(current)
    if k == 0:
        return None
    reached = [_running_average(p, k) for p in peers if len(p) >= k]
    if len(reached) < MIN_PEERS:
        return None
    median = statistics.median(reached)
    mine = _running_average(current, k)
    if _better(median, mine, maximize):
        return (
            f"early stopping: running average {mine:.6g} after {k} step(s) is worse than the median "
            f"{median:.6g} of {len(reached)} earlier trials"
        )
    return None


def rungs(min_resource: int, max_resource: int, eta: int = ETA) -> list[int]:
    out, r = [], max(1, min_resource)
    while r < max_resource:
        out.append(r)
        r *= eta
    return out


def asha_rule(
    current: Sequence[float],
    others: Sequence[Sequence[float]],
    *,
    maximize: bool,
    min_resource: int,
    max_resource: int,
    eta: int = ETA,
) -> str | None:
    """A reason to stop ``current`` at the highest rung it has reached, or None."""
    reached = [r for r in rungs(min_resource, max_resource, eta) if len(current) >= r]
    if not reached:
        return None
    rung = reached[-1]
    mine = current[rung - 1]
    values = [o[rung - 1] for o in others if len(o) >= rung] + [mine]
    ranked = sorted(values, reverse=maximize)
    keep = max(1, len(ranked) // eta)
    if _better(ranked[keep - 1], mine, maximize):
        return (
            f"early stopping (Hyperband): value {mine:.6g} at step {rung} is not in the top 1/{eta} of "
            f"{len(values)} trials at that step"
        )
    return None
