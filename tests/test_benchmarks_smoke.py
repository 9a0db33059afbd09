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


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", benchmarks.BENCHMARKS)
def test_benchmark_smoke_run_writes_a_complete_result(name: str, smoke_env: Path) -> None:
    module = importlib.import_module(f"benchmarks.{name}")
    path, result = module.run()
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
