"""GET /training-jobs/{name}/metrics?MaxPoints=...: thinned on the server, over a real socket."""

from __future__ import annotations

import math

import httpx
import pytest

from kamado.core.errors import InvalidSpec
from kamado.store.records import MetricPoint
from tests.live_server import LiveServer

KIND = "training-job"


def _seed(live: LiveServer, name: str, points: list[MetricPoint]) -> None:
    store = live.app.state.platform.store
    store.create(
        kind=KIND,
        name=name,
        arn=f"arn:aws:sagemaker:local:000000000000:training-job/{name}",
        state="Completed",
        spec={"TrainingJobName": name, "HyperParameters": {}, "ResourceConfig": {}},
        status={"SecondaryStatus": "Completed", "SecondaryStatusTransitions": [], "FailureReason": None},
        tags={},
    )
    store.append_metrics(KIND, name, points)


def test_max_points_thins_each_metric_and_says_so(live: LiveServer) -> None:
    pts: list[MetricPoint] = []
    for i in range(20_000):
        pts.append(MetricPoint("loss", 50.0 if i == 7_777 else math.exp(-i / 5000), 1.7e9 + i, i))
        if i % 100 == 0:
            pts.append(MetricPoint("acc", i / 20_000, 1.7e9 + i, None))  # 200 points, no steps
    _seed(live, "long", pts)
    full = httpx.get(f"{live.url}/api/v1/training-jobs/long/metrics").json()
    assert set(full) == {"Metrics"} and len(full["Metrics"]) == 20_200  # unchanged without MaxPoints
    assert "Index" not in full["Metrics"][0]

    body = httpx.get(f"{live.url}/api/v1/training-jobs/long/metrics", params={"MaxPoints": 500}).json()
    assert body["Downsampled"] is True
    assert body["TotalPoints"] == {"loss": 20_000, "acc": 200}
    loss = [p for p in body["Metrics"] if p["MetricName"] == "loss"]
    acc = [p for p in body["Metrics"] if p["MetricName"] == "acc"]
    assert len(loss) == 500 and len(acc) == 200  # acc is under the cap: whole
    assert loss[0]["Step"] == 0 and loss[-1]["Step"] == 19_999
    assert any(p["Value"] == 50.0 for p in loss), "the spike survives"
    assert [p["Index"] for p in acc] == list(range(200))
    assert all(p["Index"] == p["Step"] for p in loss)

    one = httpx.get(
        f"{live.url}/api/v1/training-jobs/long/metrics", params={"MaxPoints": 1000, "MetricName": "acc"}
    ).json()
    assert one["Downsampled"] is False and one["TotalPoints"] == {"acc": 200} and len(one["Metrics"]) == 200

    assert live.client.training_job_metrics("long", "loss", max_points=100)[-1]["Index"] == 19_999
    assert len(live.client.training_job_metrics("long", "loss", max_points=100)) == 100


@pytest.mark.parametrize("bad", ["1", "10001", "x", "-5"])
def test_max_points_out_of_range_is_a_400_naming_the_field(live: LiveServer, bad: str) -> None:
    _seed(live, "short", [MetricPoint("loss", 1.0, 1.7e9, 1)])
    r = httpx.get(f"{live.url}/api/v1/training-jobs/short/metrics", params={"MaxPoints": bad})
    assert r.status_code == 400
    problem = r.json()
    assert "MaxPoints" in problem["message"]
    assert any("MaxPoints" in d["field"] for d in problem["details"])
    with pytest.raises(InvalidSpec):
        live.client.training_job_metrics("short", max_points=1)


def test_max_points_on_a_missing_job_is_404(live: LiveServer) -> None:
    r = httpx.get(f"{live.url}/api/v1/training-jobs/nope/metrics", params={"MaxPoints": 100})
    assert r.status_code == 404
