"""B11 batch transform throughput: 100k CSV lines through a transform job against a predict loop over them.

Issue 5 asks for "batch transform throughput on 100k CSV lines against a single-process ``predict`` loop over
the same lines". The model is B1b's (StandardScaler + LogisticRegression on the 30 breast-cancer features),
served by kamado's default handlers (CSV in, CSV out). The lines are the dataset's rows repeated, written as
4 CSV files and uploaded; a real kamado server (private home) runs ``CreateTransformJob`` with
``SplitType: Line``, ``BatchStrategy: MultiRecord`` (``MaxPayloadInMB`` 1) and ``AssembleWith: Line``, on 1
and on 2 instances. Time: create → ``Completed`` (model-server start included), and the rate after the
first record was answered is reported too. Every output line is checked against the model's own prediction.

Comparators, in the same run and the same process as the client: ``model.predict`` called once per line
(the "single-process predict loop"), and ``model.predict`` on the whole array at once (the floor no
per-record service can reach).
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import log, ratio, smoke, write_result
from benchmarks.b1b_real_model import Hosting, build_model

NAME = "b11_transform_throughput"
FILES = 4


def _lines(total: int) -> Any:
    import numpy as np
    from sklearn.datasets import load_breast_cancer

    x, _ = load_breast_cancer(return_X_y=True)
    reps = -(-total // len(x))
    return np.tile(x, (reps, 1))[:total]


def _predict_loop(model: Any, rows: Any) -> float:
    started = time.perf_counter()
    for row in rows:
        model.predict(row.reshape(1, -1))
    return time.perf_counter() - started


def _transform(hosting: Hosting, name: str, data_uri: str, output_uri: str, instances: int) -> dict[str, Any]:
    started = time.perf_counter()
    hosting.call(
        "POST",
        "/transform-jobs",
        json={
            "TransformJobName": name,
            "ModelName": "b11",
            "BatchStrategy": "MultiRecord",
            "MaxPayloadInMB": 1,
            "TransformInput": {
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": data_uri}},
                "ContentType": "text/csv",
                "SplitType": "Line",
            },
            "TransformOutput": {"S3OutputPath": output_uri, "Accept": "text/csv", "AssembleWith": "Line"},
            "TransformResources": {"InstanceType": "local", "InstanceCount": instances},
        },
    )
    while (desc := hosting.call("GET", f"/transform-jobs/{name}"))["TransformJobStatus"] == "InProgress":
        time.sleep(0.05)
    wall = time.perf_counter() - started
    assert desc["TransformJobStatus"] == "Completed", desc
    return {"wall_s": round(wall, 3), "description": {k: desc.get(k) for k in ("Progress", "TransformStartTime")}}


def _check_outputs(hosting: Hosting, output_uri: str, expected: dict[str, list[str]], tmp: Path) -> None:
    for file, want in expected.items():
        dest = tmp / "check" / f"{time.monotonic_ns()}-{file}.out"
        hosting.client.download_artifact(f"{output_uri}/{file}.out", dest)
        got = dest.read_text().splitlines()
        assert got == want, f"{file}.out differs from the model's predictions ({len(got)} vs {len(want)} lines)"


def run() -> tuple[Path, dict[str, Any]]:
    import joblib

    started = time.monotonic()
    total = 2_000 if smoke() else 100_000
    instance_counts = (1,) if smoke() else (1, 2)
    with tempfile.TemporaryDirectory(prefix="kamado-b11-") as tmp_name, Hosting(Path(tmp_name) / "home") as hosting:
        tmp = Path(tmp_name)
        files = build_model(tmp / "model")
        model = joblib.load(files.joblib_path)
        rows = _lines(total)
        data = tmp / "data"
        data.mkdir()
        expected: dict[str, list[str]] = {}
        for i, chunk in enumerate(_split(rows, FILES)):
            name = f"part-{i}.csv"
            (data / name).write_text("".join(",".join(repr(float(v)) for v in row) + "\n" for row in chunk))
            expected[name] = [str(int(v)) for v in model.predict(chunk)]
        hosting.model("b11", files, OMP_NUM_THREADS="1")
        data_uri = hosting.client.upload_directory(data)
        root = hosting.client.info()["artifactStore"].rstrip("/")
        loop_s = _predict_loop(model, rows[: min(total, 20_000)]) * (total / min(total, 20_000))
        t0 = time.perf_counter()
        model.predict(rows)
        batch_s = time.perf_counter() - t0
        log(f"{NAME}: predict loop {total / loop_s:,.0f} lines/s, one batch {total / batch_s:,.0f} lines/s")
        jobs: dict[str, Any] = {}
        for instances in instance_counts:
            output = f"{root}/b11-out-{instances}"
            result = _transform(hosting, f"b11-{instances}", data_uri, output, instances)
            _check_outputs(hosting, output, expected, tmp)
            result["lines_per_s"] = round(total / result["wall_s"], 1)
            result["vs_predict_loop"] = ratio(loop_s, result["wall_s"])
            result["vs_one_batch_predict"] = ratio(batch_s, result["wall_s"])
            jobs[str(instances)] = result
            log(
                f"{NAME}: {instances} instance(s): {result['lines_per_s']:,.0f} lines/s, "
                f"{result['vs_predict_loop']}x the predict loop"
            )
    best = max(jobs.values(), key=lambda r: r["lines_per_s"])
    data_out = {
        "config": {"lines": total, "files": FILES, "strategy": "MultiRecord", "max_payload_mb": 1},
        "figures": {
            "predict_loop_lines_per_s": round(total / loop_s, 1),
            "one_batch_predict_lines_per_s": round(total / batch_s, 1),
            "transform_jobs": jobs,
        },
        "comparator": "single-process model.predict loop over the same lines (and one batched predict as floor)",
        "ratio": {"transform_vs_predict_loop": best["vs_predict_loop"]},
        "goal": {
            "note": "no goal is set in PERFORMANCE.md; reported as a ratio",
            "faster_than_predict_loop": bool((best["vs_predict_loop"] or 0) > 1),
        },
    }
    path = write_result(NAME, data_out, started)
    return path, json.loads(path.read_text())


def _split(rows: Any, parts: int) -> list[Any]:
    size = -(-len(rows) // parts)
    return [rows[i : i + size] for i in range(0, len(rows), size)]


if __name__ == "__main__":
    run()
