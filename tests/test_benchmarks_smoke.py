"""The benchmarks still run: each in its tiny smoke mode (BENCH_SMOKE=1), results written to a temp dir.

Only the shape of the result file is checked; a test never asserts a timing (PERFORMANCE.md).
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import benchmarks
import pytest
from benchmarks.__main__ import main as bench_main


@pytest.fixture
def smoke_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("BENCH_SMOKE", "1")
    monkeypatch.setenv("BENCH_RESULTS_DIR", str(tmp_path / "results"))
    return tmp_path / "results"


#: Benchmarks with a dedicated smoke test below (which also runs the generic checks): run each only once.
DEDICATED = (
    "b6_hpo_quality", "b7_hpo_efficiency", "b1_router_hop", "b2_traffic_split", "b1b_real_model", "b9_autoscale",
    "b10_rollout",
    # Each starts a Ray cluster (about 30 s on 2 cores); the parity suite covers the same paths in `make test`.
    "b14_ray_job_start", "b15_fanout_ray",
)  # fmt: skip


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", [n for n in benchmarks.BENCHMARKS if n not in DEDICATED])
def test_benchmark_smoke_run_writes_a_complete_result(name: str, smoke_env: Path) -> None:
    module = importlib.import_module(f"benchmarks.{name}")
    path, result = module.run()
    _check_complete(name, path, result, smoke_env)


def _check_complete(name: str, path: Path, result: dict, smoke_env: Path) -> None:
    assert path == smoke_env / f"{name}.json"
    on_disk = json.loads(path.read_text())
    assert on_disk == result
    for key in benchmarks.REQUIRED_KEYS:
        assert key in result, f"{name}: result lacks {key!r}"
    assert result["benchmark"] == name and result["smoke"] is True
    assert isinstance(result["nproc"], int) and result["nproc"] >= 1
    assert result["cpu_model"] and result["python_version"].count(".") == 2 and result["git_commit"]
    numeric = [v for k, v in result["ratio"].items() if k != "meaning"]
    assert numeric and all(isinstance(v, float) and v > 0 for v in numeric), result["ratio"]
    assert result["figures"] and result["comparator"]


def test_runner_lists_and_rejects_unknown_names(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_main(["--list"]) == 0
    assert capsys.readouterr().out.split() == list(benchmarks.BENCHMARKS)
    with pytest.raises(SystemExit):
        bench_main(["no-such-benchmark"])


def test_summaries_report_median_and_spread() -> None:
    s = benchmarks.summarize([5.0, 1.0, 3.0, 2.0, 4.0])
    assert s["n"] == 5 and s["p50"] == 3.0 and s["min"] == 1.0 and s["max"] == 5.0
    assert s["iqr"] == 2.0 and s["p95"] == pytest.approx(4.8)
    assert benchmarks.summarize([]) == {"n": 0}


@pytest.mark.timeout(120)
def test_b6_smoke_reports_regret_per_budget_tests_and_verdicts(smoke_env: Path) -> None:
    assert "b6_hpo_quality" in benchmarks.BENCHMARKS  # registered, so `make bench` and the runner include it
    from benchmarks import b6_hpo_quality as b6

    path, result = b6.run()
    _check_complete("b6_hpo_quality", path, result, smoke_env)
    budgets = [str(b) for b in result["config"]["budgets"]]
    for name in b6.OBJECTIVES:
        per_budget = result["figures"]["objectives"][name]["per_budget"]
        assert sorted(per_budget, key=int) == budgets
        for b in budgets:
            cell = per_budget[b]
            for method in ("kamado_bayesian", "kamado_random", "kamado_bayesian_2_in_flight"):
                assert cell[method]["n"] == result["config"]["seeds"] and cell[method]["min"] >= 0
                assert cell[method]["q1"] <= cell[method]["p50"] <= cell[method]["q3"]
            assert cell["p_bayesian_lt_random"] is None or 0 <= cell["p_bayesian_lt_random"] <= 1
            assert (
                result["comparator"]["objectives"][name]["per_budget"][b]["optuna_tpe"]["n"]
                == cell["kamado_bayesian"]["n"]
            )
    goal = result["goal"]
    assert set(goal["per_budget"]) == set(budgets)
    assert isinstance(goal["bayesian_beats_random_met_at_largest_budget"], bool)
    assert isinstance(goal["within_tpe_spread_met"], bool)
    for space in result["figures"]["decision_overhead_ms"].values():
        assert sorted(space, key=int) == budgets


@pytest.mark.timeout(120)
def test_b7_smoke_reports_time_to_target_utilisation_and_overhead(smoke_env: Path) -> None:
    assert "b7_hpo_efficiency" in benchmarks.BENCHMARKS  # registered, so `make bench` and the runner include it
    from benchmarks import b7_hpo_efficiency as b7

    path, result = b7.run()
    _check_complete("b7_hpo_efficiency", path, result, smoke_env)
    tta = result["figures"]["time_to_target"]
    seeds = result["config"]["seeds"]
    assert [p["seed"] for p in tta["per_seed"]] == seeds
    for p in tta["per_seed"]:
        assert p["hyperband_s"] > 0 and p["random_s"] > 0 and p["hyperband_trials"] >= 1 and p["random_trials"] >= 1
        assert isinstance(p["hyperband_reached"], bool) and isinstance(p["random_reached"], bool)
    assert tta["hyperband"]["n"] == tta["random_full_budget"]["n"] == len(seeds)
    assert f"{result['config']['target_fraction']:.2f}" in tta["by_target_fraction"]
    util = result["figures"]["utilisation"]
    for key in ("short_trials", "full_budget_random_trials", "hyperband_trials"):
        assert 0 < util[key]["p50"] <= 1.05, (key, util[key])  # busy time from the server's own clock
    over = result["figures"]["overhead"]
    reps = result["config"]["overhead_reps"]
    assert over["kamado_wall_client"]["n"] == result["comparator"]["overhead"]["wall"]["n"] == reps
    assert over["trials"] == result["config"]["short_trials"]
    assert isinstance(over["added_per_trial_ms_wall"], float) and isinstance(over["added_pct_vs_optuna"], float)
    goal = result["goal"]
    for key in ("hyperband_speedup_met", "utilisation_met", "overhead_met"):
        assert isinstance(goal[key], bool)


@pytest.mark.timeout(120)
def test_b1_smoke_reports_added_latency_per_connection_count(smoke_env: Path) -> None:
    assert "b1_router_hop" in benchmarks.BENCHMARKS  # registered, so `make bench` and the runner include it
    from benchmarks import b1_router_hop as b1

    path, result = b1.run()
    _check_complete("b1_router_hop", path, result, smoke_env)
    per = result["figures"]["per_connections"]
    assert sorted(per, key=int) == [str(c) for c in b1.CONNECTIONS]
    for row in per.values():
        assert row["errors"] == 0 and row["requests"] > 0
        for target in ("direct", "routed", "floor_asyncio"):
            assert row[target]["rps"]["n"] == result["config"]["repetitions"]
        assert isinstance(row["added_p50_ms"], float) and isinstance(row["added_p99_ms"], float)
    for key in ("added_p50_met", "added_p99_met", "rps_met"):
        assert isinstance(result["goal"][key], bool)


@pytest.mark.timeout(120)
def test_b2_smoke_counts_every_answer_per_variant(smoke_env: Path) -> None:
    assert "b2_traffic_split" in benchmarks.BENCHMARKS
    from benchmarks import b2_traffic_split as b2

    path, result = b2.run()
    _check_complete("b2_traffic_split", path, result, smoke_env)
    shares = result["figures"]["shares"]
    assert list(shares) == ["90/10", "50/50"]
    for share in shares.values():
        assert share["errors"] == 0 and set(share["counts"]) == {"A", "B"}
        assert sum(share["counts"].values()) == share["requests"] == result["config"]["requests_per_split"]
        low, high = share["interval_99"]
        assert low < share["configured_share_A"] < high  # the verdict itself is not asserted: 1 % of runs miss
    assert isinstance(result["goal"]["inside_binomial_99"], bool) and isinstance(result["goal"]["overhead_met"], bool)


@pytest.mark.timeout(120)
def test_b1b_smoke_serves_the_real_model_and_records_the_missing_peer(smoke_env: Path) -> None:
    assert "b1b_real_model" in benchmarks.BENCHMARKS
    from benchmarks import b1b_real_model as b1b

    path, result = b1b.run()
    _check_complete("b1b_real_model", path, result, smoke_env)
    answers = result["figures"]["answers"]
    assert answers["kamado"] == answers["expected"], "the endpoint answers with the model's own prediction"
    per = result["figures"]["per_connections"]
    assert sorted(per, key=int) == [str(c) for c in b1b.CONNECTIONS]
    for row in per.values():
        assert row["kamado"]["failed"] == 0 and row["kamado"]["requests"] > 0
        assert row["kamado"]["rps"]["n"] == result["config"]["repetitions"]
    assert result["peer"] is None and "smoke" in result["peer_reason"], "the smoke mode never installs MLflow"
    assert result["goal"]["rps_met"] is None and result["goal"]["p50_met"] is None
    assert result["figures"]["in_process"]["predict_ms"] > 0


@pytest.mark.timeout(120)
def test_b9_smoke_sees_the_second_instance_serve(smoke_env: Path) -> None:
    assert "b9_autoscale" in benchmarks.BENCHMARKS
    from benchmarks import b9_autoscale as b9

    path, result = b9.run()
    _check_complete("b9_autoscale", path, result, smoke_env)
    steps = result["figures"]["steps"]
    assert len(steps) == result["config"]["repetitions"]
    for step in steps:
        assert step["served_s"] > 0 and step["cold_start_s"] > 0 and step["new_instance"]
        assert step["decision_s"] is not None and step["decision_s"] <= step["served_s"]
    assert result["config"]["policy"]["EvaluationWindowSeconds"] <= 5
    assert isinstance(result["goal"]["met"], bool) and isinstance(result["goal"]["met_every_repetition"], bool)


@pytest.mark.timeout(120)
def test_b10_smoke_rolls_out_with_every_policy(smoke_env: Path) -> None:
    assert "b10_rollout" in benchmarks.BENCHMARKS
    from benchmarks import b10_rollout as b10

    path, result = b10.run()
    _check_complete("b10_rollout", path, result, smoke_env)
    per = result["figures"]["per_policy"]
    assert list(per) == ["all_at_once", "canary_10", "linear_4x25"]
    for name, rows in result["figures"]["rollouts"].items():
        assert len(rows) == result["config"]["repetitions"], name
        for r in rows:
            assert r["steady"]["requests"] > 0 and r["during"]["requests"] > 0
            assert r["during"]["requests"] == r["starting"]["requests"] + r["shifting"]["requests"]
    assert isinstance(result["goal"]["failures_met"], bool) and isinstance(result["goal"]["p99_met"], bool)
