"""B9 autoscale: how long a burst waits for the second replica, against that replica's own cold start.

A real kamado server (private home) serves B1b's model through an inference script whose predict sleeps 20 ms
(so one instance answers about 50 requests/s) and that answers with ``KAMADO_INSTANCE_ID``, so the client
sees which instance served each request. The endpoint starts with one instance and a target-tracking policy:
MinCapacity 1, MaxCapacity 2, ScaleOutCooldown 0, EvaluationWindowSeconds 5, and a TargetValue of 1,000
invocations per instance per minute, which the baseline (one connection, paced to a request every 100 ms:
~600/min) stays under and a burst (one instance saturated: ~3,000/min) is far over.

Each repetition: baseline for at least the window (the comparator is measured meanwhile), then a step to 32
connections sending back to back (B1b's :class:`LoadGen`). Measured: from the step to the first answer from an
instance that was not serving before it, split with the endpoint's description into the scaling decision
(``AutoScaling.LastScaleOutAt``), the instance's launch (its ``StartedAt``) and the rest (boot, health check,
routing table). Then back to the baseline until the policy scales in (ScaleInCooldown 8 s) and the drained
instance is gone. One warm-up repetition, then 5.

Comparator, the replica's own cold start, in the same run (once per repetition, during the baseline): a fresh
``python -m kamado.hosting.model_server`` for the same model, script and environment, started directly, timed
from ``Popen`` to its first ``/ping`` 200. Goal (PERFORMANCE.md): time until the second replica serves <=
decision window + cold start + 0.5 s.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks import log, ratio, smoke, summarize, write_result
from benchmarks.b1b_real_model import Hosting, LoadGen, ModelFiles, _free_port, build_model

NAME = "b9_autoscale"
ENDPOINT = "b9"
SLEEP_S = 0.020
WINDOW_S = 5.0
TARGET_PER_MIN = 1000.0
SCALE_IN_COOLDOWN_S = 8.0
BASE_INTERVAL_S = 0.1
BURST_CONNECTIONS = 32
GOAL_SLACK_S = 0.5
POLICY = {
    "MinCapacity": 1,
    "MaxCapacity": 2,
    "TargetValue": TARGET_PER_MIN,
    "ScaleOutCooldown": 0,
    "ScaleInCooldown": SCALE_IN_COOLDOWN_S,
    "EvaluationWindowSeconds": WINDOW_S,
}


def _instance(body: bytes | None) -> str | None:
    try:
        return str(json.loads(body or b"")["i"])
    except (ValueError, KeyError, TypeError):
        return None


def cold_start(files: ModelFiles, workdir: Path) -> float:
    """Seconds from starting a model server for the same model and script to its first ``/ping`` 200."""
    import httpx

    port = _free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", str(workdir)),
        "LANG": os.environ.get("LANG", "C.UTF-8"),
        "PYTHONUNBUFFERED": "1",
        "OMP_NUM_THREADS": "1",
        "SAGEMAKER_PROGRAM": "inference.py",
        "SAGEMAKER_SUBMIT_DIRECTORY": str(files.code_dir),
        "BENCH_SLEEP_S": str(SLEEP_S),
        "KAMADO_INSTANCE_ID": "cold-start",
    }
    cmd = [sys.executable, "-m", "kamado.hosting.model_server", "--model-dir", str(files.directory)]
    cmd += ["--port", str(port)]
    with open(workdir / "cold-start.log", "ab") as out, httpx.Client(trust_env=False, timeout=2) as http:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if http.get(f"http://127.0.0.1:{port}/ping").status_code == 200:
                        return time.perf_counter() - t0
                if proc.poll() is not None or time.perf_counter() - t0 > 120:
                    raise RuntimeError(f"the model server did not start; see {workdir / 'cold-start.log'}")
                time.sleep(0.005)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


class Watch:
    """Reads the load's records as they arrive: which instances answered, and when."""

    def __init__(self, load: LoadGen) -> None:
        self.load = load
        self.seen = 0

    def new(self) -> list[tuple[float, str | None]]:
        records = self.load.records[self.seen :]
        self.seen += len(records)
        return [(done, _instance(body)) for _, done, outcome, body in records if outcome == "200"]

    def serving(self, since: float) -> Counter[str]:
        return Counter(
            str(i)
            for _, done, outcome, body in list(self.load.records)
            if done >= since and outcome == "200" and (i := _instance(body))
        )


def _variant(desc: dict[str, Any]) -> dict[str, Any]:
    variant: dict[str, Any] = desc["ProductionVariants"][0]
    return variant


def _one_step(hosting: Hosting, load: LoadGen, *, burst_after_s: float, timeout_s: float) -> dict[str, Any]:
    watch = Watch(load)
    watch.new()
    before = set(watch.serving(time.perf_counter() - 1.0))
    if len(before) != 1:
        raise RuntimeError(f"expected one instance serving before the step, saw {sorted(before)}")
    t_step, wall_step = time.perf_counter(), time.time()
    load.resize(BURST_CONNECTIONS, 0.0)
    served_at: float | None = None
    new_id: str | None = None
    decided_at = started_at = None
    reason = None
    next_poll = 0.0
    while served_at is None:
        for done, inst in watch.new():
            if inst is not None and inst not in before and done >= t_step:
                served_at, new_id = done, inst
                break
        now = time.perf_counter()
        if now >= next_poll:
            next_poll = now + 0.25
            variant = _variant(hosting.describe(ENDPOINT))
            scale_out = (variant.get("AutoScaling") or {}).get("LastScaleOutAt")
            if scale_out and float(scale_out) >= wall_step - 1.0 and decided_at is None:
                decided_at = float(scale_out)
                reason = (variant.get("AutoScaling") or {}).get("LastDecision")
            for inst in variant.get("Instances", []):
                if inst["InstanceId"] not in before and inst.get("StartedAt") and started_at is None:
                    started_at = float(inst["StartedAt"])
        if now - t_step > timeout_s:
            raise RuntimeError(f"no second instance served within {timeout_s:g} s of the step")
        time.sleep(0.005)
    if decided_at is None or started_at is None:  # seen after the fact: read them once more
        variant = _variant(hosting.describe(ENDPOINT))
        decided_at = decided_at or float((variant.get("AutoScaling") or {}).get("LastScaleOutAt") or 0) or None
        started_at = started_at or next(
            (float(i["StartedAt"]) for i in variant.get("Instances", []) if i["InstanceId"] == new_id), None
        )
    time.sleep(burst_after_s)
    share = watch.serving(time.perf_counter() - burst_after_s)
    load.resize(1, BASE_INTERVAL_S)
    served_s = served_at - t_step
    decision_s = decided_at - wall_step if decided_at else None
    launched_s = started_at - wall_step if started_at else None
    return {
        "served_s": round(served_s, 3),
        "decision_s": round(decision_s, 3) if decision_s is not None else None,
        "launched_s": round(launched_s, 3) if launched_s is not None else None,
        "boot_and_route_s": round(served_s - launched_s, 3) if launched_s is not None else None,
        "serving_before": sorted(before),
        "new_instance": new_id,
        "decision": reason,
        "share_of_new_after": round(share[str(new_id)] / max(1, sum(share.values())), 3),
        "requests_after": sum(share.values()),
    }


def _wait_scaled_in(hosting: Hosting, timeout_s: float) -> float:
    t0 = time.perf_counter()
    while True:
        variant = _variant(hosting.describe(ENDPOINT))
        if variant["DesiredInstanceCount"] == 1 and len(variant.get("Instances", [])) == 1:
            return time.perf_counter() - t0
        if time.perf_counter() - t0 > timeout_s:
            raise RuntimeError(f"the endpoint did not scale back in within {timeout_s:g} s: {variant}")
        time.sleep(0.2)


def run() -> tuple[Path, dict[str, Any]]:
    started = time.monotonic()
    tiny = smoke()
    warmup, reps = (0, 1) if tiny else (1, 5)
    base_s = 2.0 if tiny else WINDOW_S + 1.0
    burst_after_s = 0.5 if tiny else 1.5
    steps: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="kamado-b9-") as tmp_name, Hosting(Path(tmp_name) / "home") as hosting:
        tmp = Path(tmp_name)
        files = build_model(tmp / "model")
        hosting.model(ENDPOINT, files, script=True, BENCH_SLEEP_S=str(SLEEP_S))
        hosting.config(ENDPOINT, ENDPOINT)
        url = hosting.endpoint(ENDPOINT, ENDPOINT)
        hosting.call("PUT", f"/endpoints/{ENDPOINT}/variants/AllTraffic/scaling-policy", json=POLICY)
        load = LoadGen(url, files.body, keep_bodies=True).start(1, BASE_INTERVAL_S)
        try:
            for rep in range(warmup + reps):
                t_base = time.perf_counter()
                cold = cold_start(files, tmp)
                time.sleep(max(0.0, base_s - (time.perf_counter() - t_base)))
                label = "warm-up" if rep < warmup else f"{rep - warmup + 1}/{reps}"
                log(f"{NAME}: step {label}: 1 -> {BURST_CONNECTIONS} connections (cold start {cold:.2f} s)")
                step = _one_step(hosting, load, burst_after_s=burst_after_s, timeout_s=120)
                step["cold_start_s"] = round(cold, 3)
                step["excess_over_cold_start_s"] = round(step["served_s"] - cold, 3)
                log(f"{NAME}: second instance served {step['served_s']:.2f} s after the step: {step}")
                if rep >= warmup:
                    steps.append(step)
                if rep + 1 < warmup + reps:
                    step["scale_in_s"] = round(_wait_scaled_in(hosting, 120), 3)
        finally:
            load.stop()
    failed = Counter(o for _, _, o, _ in load.records if o != "200")
    served = [s["served_s"] for s in steps]
    colds = [s["cold_start_s"] for s in steps]
    bound = WINDOW_S + statistics.median(colds) + GOAL_SLACK_S
    per_step_met = [s["served_s"] <= WINDOW_S + s["cold_start_s"] + GOAL_SLACK_S for s in steps]
    result = {
        "description": __doc__.strip().splitlines()[0],
        "method": (
            f"real server; one instance of a {SLEEP_S * 1000:g} ms model; policy {POLICY}; baseline one connection "
            f"paced at {BASE_INTERVAL_S:g} s for >= {base_s:g} s, then {BURST_CONNECTIONS} connections back to back; "
            "time from the step to the first answer from a new instance; comparator: a fresh model server for the "
            f"same model started directly, Popen -> first /ping 200, once per repetition; {warmup} warm-up, {reps} "
            "repetitions, medians."
        ),
        "load_generator": "this process: asyncio streams on uvloop in one thread (B1b's LoadGen)",
        "load_average_1_5_15_at_end": [round(x, 2) for x in os.getloadavg()],  # a shared machine: how busy
        "config": {
            "policy": POLICY,
            "model_sleep_s": SLEEP_S,
            "baseline_interval_s": BASE_INTERVAL_S,
            "burst_connections": BURST_CONNECTIONS,
            "repetitions": reps,
            "warmup": warmup,
        },
        "figures": {
            "steps": steps,
            "served_s": summarize(served),
            "decision_s": summarize([s["decision_s"] for s in steps if s["decision_s"] is not None]),
            "launched_s": summarize([s["launched_s"] for s in steps if s["launched_s"] is not None]),
            "boot_and_route_s": summarize([s["boot_and_route_s"] for s in steps if s["boot_and_route_s"] is not None]),
            "excess_over_cold_start_s": summarize([s["excess_over_cold_start_s"] for s in steps]),
            "failed_requests": dict(failed),
            "requests": len(load.records),
        },
        "comparator": {
            "name": "the replica's own cold start: model server Popen -> first /ping 200, same run",
            "cold_start_s": summarize(colds),
            "decision_window_s": WINDOW_S,
        },
        "ratio": {
            "served_over_cold_start": ratio(statistics.median(served), statistics.median(colds)),
            "served_over_goal_bound": ratio(statistics.median(served), bound),
            "meaning": "time until the second replica serves / the replica's cold start, and / the goal's bound "
            "(window + cold start + 0.5 s); <= 1.0 on the second meets the goal",
        },
        "goal": {
            "bound": "decision window + cold start + 0.5 s",
            "bound_s": round(bound, 3),
            "window_le_5_s": WINDOW_S <= 5.0,
            "met": statistics.median(served) <= bound and WINDOW_S <= 5.0,
            "met_every_repetition": all(per_step_met),
            "judged_at": "median over repetitions (each repetition against its own cold start in met_every_repetition)",
        },
    }
    path = write_result(NAME, result, started)
    return path, json.loads(path.read_text())


if __name__ == "__main__":
    p, r = run()
    print(json.dumps({"path": str(p), "ratio": r["ratio"], "goal": r["goal"]}, indent=1))
