"""The weekly retrain pipeline (train → evaluate → Choice on the metric → canary update) end to end,
written once in ASL (``examples/weekly_retrain/pipeline.asl.json``) and once in Python
(``examples/weekly_retrain/pipeline.py``): both compile to the same definition and both run."""

from __future__ import annotations

import json
import runpy
from pathlib import Path
from typing import Any

import httpx
from sklearn.datasets import load_iris

from kamado.sdk.pipelines import StateMachine
from tests.hosting.endpoint_kit import ROW, make_kit
from tests.live_server import LiveServer

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "weekly_retrain"


def _workflow() -> Any:
    return runpy.run_path(str(EXAMPLE / "pipeline.py"))["workflow"]


def test_python_and_asl_forms_are_the_same_definition() -> None:
    assert _workflow().definition() == json.loads((EXAMPLE / "pipeline.asl.json").read_text())


def _setup(live: LiveServer, tmp_path: Path) -> dict[str, Any]:
    c = live.client
    data = tmp_path / "data"
    data.mkdir()
    x, y = load_iris(return_X_y=True, as_frame=True)
    x.assign(target=y).to_csv(data / "iris.csv", index=False)
    c.create_function(
        {
            "FunctionName": "evaluate",
            "Handler": "app.handler",
            "Code": {"Uri": c.upload_directory(EXAMPLE / "evaluate")},
        }
    )
    kit = make_kit(c, tmp_path / "kit")  # today's model: what the pipeline replaces
    kit.model("v0")
    kit.config("c0", [{"VariantName": "AllTraffic", "ModelName": "v0", "InitialInstanceCount": 1}])
    kit.endpoint("prod", "c0")
    kit.wait("prod", timeout=90)
    return {
        "kit": kit,
        "input": {
            "code": c.upload_directory(EXAMPLE / "code"),
            "data": c.upload_directory(data),
            "endpoint": "prod",
        },
    }


def test_weekly_retrain_deploys_a_better_model_and_keeps_the_current_one_otherwise(
    live: LiveServer, tmp_path: Path
) -> None:
    setup = _setup(live, tmp_path)
    kit, base = setup["kit"], setup["input"]
    asl = StateMachine.create("weekly-retrain-asl", EXAMPLE / "pipeline.asl.json", client=live.client)
    out = asl.start({**base, "version": "w1", "threshold": 0.8}).wait(timeout_s=240)
    assert out["score"]["accuracy"] >= 0.8 and out["score"]["better"] is True
    assert out["deployed"] == {"status": "InService", "config": "w1-config"}
    assert out["train"]["name"] == "w1-train" and out["train"]["model"].endswith("model.tar.gz")
    desc = kit.describe("prod")
    assert desc["EndpointStatus"] == "InService" and desc["EndpointConfigName"] == "w1-config"
    answer = httpx.post(
        kit.runtime() + "/endpoints/prod/invocations",
        content=ROW,
        headers={"Content-Type": "application/json"},
        trust_env=False,
        timeout=30,
    )
    assert answer.status_code == 200 and json.loads(answer.content) == [0], answer.text

    python = _workflow().create(client=live.client)
    kept = python.start({**base, "version": "w2", "threshold": 1.01})
    out = kept.wait(timeout_s=240)
    assert out["score"]["better"] is False and "deployed" not in out
    entered = [e["stateEnteredEventDetails"]["name"] for e in kept.history() if e["type"].endswith("StateEntered")]
    assert entered == ["Train", "Evaluate", "Better?", "KeepCurrent"]
    assert kit.describe("prod")["EndpointConfigName"] == "w1-config", "a model below the bar is not deployed"
