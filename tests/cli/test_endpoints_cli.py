"""``kamado endpoints``, ``kamado models`` and ``kamado invoke`` against a real server, router and model server."""

from __future__ import annotations

import json
from pathlib import Path

import joblib
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from typer.testing import CliRunner

from kamado.cli.main import app
from tests.live_server import LiveServer

pytestmark = pytest.mark.timeout(120)
runner = CliRunner()


def _run(live: LiveServer, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), env={"KAMADO_URL": live.url})
    return result.exit_code, result.stdout, result.stderr


# A free router port whatever KAMADO_ROUTER_PORT says: tests run side by side.
@pytest.mark.parametrize("live", [{"router_host": "127.0.0.1", "router_port": 0}], indirect=True)
def test_create_list_describe_invoke_logs_delete(live: LiveServer, tmp_path: Path) -> None:
    x, y = load_iris(return_X_y=True)
    joblib.dump(LogisticRegression(max_iter=500).fit(x, y), tmp_path / "model.joblib")
    code, out, err = _run(live, "endpoints", "create", "cli-ep", "--model-data", str(tmp_path / "model.joblib"))
    assert code == 0, out + err
    assert "cli-ep" in out and "InService" in out and "AllTraffic" in out
    assert "InService" in err, "status changes while waiting go to stderr"

    code, out, _ = _run(live, "endpoints", "list", "--output", "json")
    assert code == 0 and [(e["EndpointName"], e["EndpointStatus"]) for e in json.loads(out)] == [
        ("cli-ep", "InService")
    ]
    code, out, _ = _run(live, "models", "list")
    assert code == 0 and "cli-ep" in out
    code, out, _ = _run(live, "models", "describe", "cli-ep")
    assert code == 0 and "ModelDataUrl" in out

    code, out, err = _run(live, "invoke", "cli-ep", "--body", "[[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]")
    assert code == 0, err
    assert json.loads(out) == [0, 2] and "AllTraffic" in err
    (tmp_path / "rows.csv").write_text("5.1,3.5,1.4,0.2\n")
    code, out, _ = _run(
        live,
        "invoke",
        "cli-ep",
        "--body",
        f"@{tmp_path / 'rows.csv'}",
        "--content-type",
        "text/csv",
        "--accept",
        "text/csv",
    )
    assert code == 0 and out == "0\n"
    code, out, err = _run(live, "invoke", "cli-ep", "--body", "[[1, 2")
    assert code == 2 and "ModelError" in err, "a model error exits 2 with its code"
    code, _, err = _run(live, "invoke", "nope", "--body", "[]")
    assert code == 2 and "nope" in err

    code, out, _ = _run(live, "endpoints", "describe", "cli-ep")
    assert code == 0 and "InService" in out and "AllTraffic" in out and "invocations" in out
    code, out, _ = _run(live, "endpoints", "describe", "cli-ep", "--output", "json")
    metrics = json.loads(out)["ProductionVariants"][0]["Metrics"]
    assert metrics["invocations"] == 3 and metrics["invocations_4xx"] == 1
    code, out, _ = _run(live, "endpoints", "logs", "cli-ep")
    assert code == 0 and "model server" in out

    code, out, _ = _run(
        live, "endpoints", "scale", "cli-ep", "--variant", "AllTraffic", "--min", "1", "--max", "2", "--target", "600"
    )
    assert code == 0, out
    code, out, _ = _run(live, "endpoints", "describe", "cli-ep")
    assert "AllTraffic autoscaling: 1-2 instances at 600 invocations/instance/min" in out
    code, _, err = _run(live, "endpoints", "update", "cli-ep", "--config", "no-such-config")
    assert code == 2 and "no-such-config" in err

    code, out, _ = _run(live, "endpoints", "delete", "cli-ep", "--wait")
    assert code == 0 and "Deleted cli-ep" in out
    code, _, err = _run(live, "endpoints", "describe", "cli-ep")
    assert code == 2 and "ResourceNotFound" in err
    code, out, _ = _run(live, "models", "delete", "cli-ep")
    assert code == 0
