"""Search strategies over Optuna in ask-and-tell mode, rebuilt from kamado's store on every decision.

The store is the only truth: each time trials are needed, a throw-away in-memory study is rebuilt from the
tuning job's child training jobs (their hyperparameters and objective values) and asked for the next
parameters. A crash loses nothing, and Optuna's own storage is never a second truth. Samplers are seeded
per trial number from the job's seed, so a rebuilt study proposes something new for trial n + 1 and the
whole search is reproducible.
"""

from __future__ import annotations

import hashlib
import itertools
import random
from dataclasses import dataclass
from typing import Any

from kamado.tuning.spec import TuningJobConfig


@dataclass(frozen=True)
class PastTrial:
    """One child training job as the search sees it."""

    tuned: dict[str, str]
    #: "running", "complete" (with value), "failed".
    state: str
    value: float | None = None


_OPTUNA: Any = None


def _optuna() -> Any:
    """Optuna, imported on first use (it costs ~0.2 s) with its per-trial INFO logging silenced once."""
    global _OPTUNA
    if _OPTUNA is None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        _OPTUNA = optuna
    return _OPTUNA


def _distributions(config: TuningJobConfig) -> dict[str, Any]:
    optuna = _optuna()
    dists: dict[str, Any] = {}
    ranges = config.ParameterRanges
    for r in ranges.IntegerParameterRanges:
        low, high = r.bounds()
        dists[r.Name] = optuna.distributions.IntDistribution(int(low), int(high), log=r.ScalingType == "Logarithmic")
    for c in ranges.ContinuousParameterRanges:
        low, high = c.bounds()
        if c.ScalingType == "ReverseLogarithmic":
            # Sample r = 1 - x on a log scale: dense near x = 1, as SageMaker's reverse-log scaling is.
            dists[c.Name] = optuna.distributions.FloatDistribution(1 - high, 1 - low, log=True)
        else:
            dists[c.Name] = optuna.distributions.FloatDistribution(low, high, log=c.ScalingType == "Logarithmic")
    for cat in ranges.CategoricalParameterRanges:
        dists[cat.Name] = optuna.distributions.CategoricalDistribution(list(cat.Values))
    return dists


def _reverse(config: TuningJobConfig) -> set[str]:
    return {c.Name for c in config.ParameterRanges.ContinuousParameterRanges if c.ScalingType == "ReverseLogarithmic"}


def _internal(config: TuningJobConfig, dists: dict[str, Any], tuned: dict[str, str]) -> dict[str, Any] | None:
    """Stored string values back into the distributions' space; None if they no longer fit."""
    optuna = _optuna()
    out: dict[str, Any] = {}
    reverse = _reverse(config)
    for name, dist in dists.items():
        raw = tuned.get(name)
        if raw is None:
            return None
        try:
            if isinstance(dist, optuna.distributions.IntDistribution):
                value: Any = int(float(raw))
            elif isinstance(dist, optuna.distributions.FloatDistribution):
                value = 1 - float(raw) if name in reverse else float(raw)
            else:
                value = raw
        except ValueError:
            return None
        if not dist._contains(dist.to_internal_repr(value)):
            return None
        out[name] = value
    return out


def _external(config: TuningJobConfig, params: dict[str, Any]) -> dict[str, str]:
    reverse = _reverse(config)
    out = {}
    for name, value in params.items():
        if name in reverse:
            value = 1 - value
        out[name] = repr(float(value)) if isinstance(value, float) else str(value)
    return out


def _seed(base_seed: int, trial_number: int) -> int:
    digest = hashlib.sha256(f"{base_seed}:{trial_number}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def grid_point(config: TuningJobConfig, base_seed: int, trial_number: int) -> dict[str, str]:
    """Trial n of a Grid search: the n-th combination of a seeded shuffle of the full grid."""
    axes: list[tuple[str, list[str]]] = []
    for r in config.ParameterRanges.IntegerParameterRanges:
        low, high = r.bounds()
        axes.append((r.Name, [str(v) for v in range(int(low), int(high) + 1)]))
    for cat in config.ParameterRanges.CategoricalParameterRanges:
        axes.append((cat.Name, list(cat.Values)))
    combos = list(itertools.product(*(values for _, values in axes)))
    random.Random(base_seed).shuffle(combos)
    combo = combos[(trial_number - 1) % len(combos)]
    return {name: value for (name, _), value in zip(axes, combo, strict=True)}


def suggest(config: TuningJobConfig, past: list[PastTrial], *, base_seed: int, trial_number: int) -> dict[str, str]:
    """The tuned hyperparameters (as strings) for trial ``trial_number`` given every earlier trial."""
    if config.Strategy == "Grid":
        return grid_point(config, base_seed, trial_number)
    optuna = _optuna()
    seed = _seed(base_seed, trial_number)
    if config.Strategy in ("Random", "Hyperband"):  # Hyperband samples at random and stops trials early
        sampler = optuna.samplers.RandomSampler(seed=seed)
    else:
        sampler = optuna.samplers.TPESampler(
            seed=seed, n_startup_trials=min(10, max(2, config.max_jobs() // 5)), multivariate=True, constant_liar=True
        )
    if config.Strategy in ("Random", "Hyperband"):
        past = []  # their draws do not depend on history: skip rebuilding the study (constant time per trial)
    direction = "maximize" if config.HyperParameterTuningJobObjective.Type == "Maximize" else "minimize"
    study = optuna.create_study(direction=direction, sampler=sampler)
    dists = _distributions(config)
    states = {
        "running": optuna.trial.TrialState.RUNNING,
        "complete": optuna.trial.TrialState.COMPLETE,
        "failed": optuna.trial.TrialState.FAIL,
    }
    for t in past:
        params = _internal(config, dists, t.tuned)
        if params is None or (t.state == "complete" and t.value is None):
            continue
        study.add_trial(
            optuna.trial.create_trial(
                state=states[t.state],
                value=t.value if t.state == "complete" else None,
                params=params,
                distributions=dists,
            )
        )
    trial = study.ask(dists)
    return _external(config, trial.params)
