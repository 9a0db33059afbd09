"""The hosting SDK end to end, as a SageMaker user writes it: train, ``estimator.deploy()``, ``predict``.

One server and one deployed endpoint are shared by the module (each endpoint costs a model-server start);
tests that change an endpoint deploy their own.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import joblib
import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from kamado import Model, ModelError, Predictor, SKLearn
from kamado.core.errors import InvalidSpec, NotFound
from kamado.sdk.client import Client
from kamado.sdk.deserializers import CSVDeserializer, NumpyDeserializer, StringDeserializer
from kamado.sdk.errors import EndpointUpdateRolledBack
from kamado.sdk.serializers import CSVSerializer, NumpySerializer
from kamado.testing.hosting import stop_hosting_processes
from tests.live_server import start_server, write_script

pytestmark = pytest.mark.timeout(120)

ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]
LABELS = [0, 2]

#: A SageMaker script-mode training script that is also its own inference script: predict_fn refuses
#: negative measurements, so a test can make the model fail on purpose.
TRAIN = """
import argparse
import os

import joblib


def predict_fn(input_data, model):
    if input_data[0][0] < 0:
        raise ValueError("sepal length cannot be negative")
    return model.predict(input_data)


if __name__ == "__main__":
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    parser = argparse.ArgumentParser()
    parser.add_argument("--C", type=float, default=1.0)
    parser.add_argument("--model-dir", default=os.environ.get("SM_MODEL_DIR"))
    args, _ = parser.parse_known_args()
    x, y = load_iris(return_X_y=True)
    model = LogisticRegression(C=args.C, max_iter=500).fit(x, y)
    joblib.dump(model, os.path.join(args.model_dir, "model.joblib"))
"""


@dataclass
class Served:
    client: Client
    home: Path
    estimator: SKLearn
    predictor: Predictor


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("sdk-hosting")
    home = tmp / "home"
    # A free router port whatever KAMADO_ROUTER_PORT says: tests run side by side.
    server, thread, url, _ = start_server(home, router_host="127.0.0.1", router_port=0)
    client = Client(url)
    try:
        estimator = SKLearn(
            entry_point="train.py",
            source_dir=write_script(tmp / "src", TRAIN),
            hyperparameters={"C": 2.0},
            client=client,
        )
        estimator.fit(logs=False)
        predictor = estimator.deploy(endpoint_name="iris")
        yield Served(client, home, estimator, predictor)
    finally:
        client.close()
        server.should_exit = True
        thread.join(30)
        stop_hosting_processes(home)


def test_estimator_deploy_serves_the_training_script(served: Served) -> None:
    assert served.predictor.describe()["EndpointStatus"] == "InService"
    config = served.client.describe_endpoint_config("iris")
    model = served.client.describe_model(config["ProductionVariants"][0]["ModelName"])
    env = model["PrimaryContainer"]["Environment"]
    job = served.estimator.latest_training_job
    assert job is not None
    hps = job.describe()["HyperParameters"]
    assert env["SAGEMAKER_PROGRAM"] == "train.py"
    assert f'"{env["SAGEMAKER_SUBMIT_DIRECTORY"]}"' == hps["sagemaker_submit_directory"], "the code it trained with"
    assert model["PrimaryContainer"]["ModelDataUrl"] == served.estimator.model_data


def test_predict_with_json_csv_and_npy(served: Served) -> None:
    assert served.predictor.predict(ROWS) == LABELS
    assert served.predictor.predict(np.array(ROWS)) == LABELS

    csv = Predictor("iris", client=served.client, serializer=CSVSerializer(), deserializer=CSVDeserializer())
    assert csv.predict(ROWS) == [["0"], ["2"]]

    npy = Predictor("iris", client=served.client, serializer=NumpySerializer(), deserializer=NumpyDeserializer())
    result = npy.predict(np.array(ROWS))
    assert isinstance(result, np.ndarray)
    np.testing.assert_array_equal(result, LABELS)

    raw = served.client.invoke_endpoint("iris", b"5.1,3.5,1.4,0.2", "text/csv", accept="application/json")
    assert (raw.body, raw.content_type, raw.invoked_variant) == (b"[0]", "application/json", "AllTraffic")
    text = Predictor("iris", client=served.client, deserializer=StringDeserializer())
    assert text.predict(ROWS, initial_args={"Accept": "text/csv"}) == "0\n2\n"


def test_a_model_failure_is_a_model_error_with_the_models_message(served: Served) -> None:
    with pytest.raises(ModelError) as caught:
        served.predictor.predict([[-1.0, 3.5, 1.4, 0.2]])
    err = caught.value
    assert err.original_status_code == 500
    assert "sepal length cannot be negative" in err.original_message
    assert "sepal length cannot be negative" in err.message and "iris" in err.message
    with pytest.raises(ModelError) as caught:
        served.client.invoke_endpoint("iris", b"[[1, 2", "application/json")
    assert caught.value.original_status_code == 400, "a body the model cannot parse is the model's 4xx"


def test_unknown_endpoint_and_variant_are_clear_errors(served: Served) -> None:
    with pytest.raises(NotFound, match="nope"):
        Predictor("nope", client=served.client).predict(ROWS)
    with pytest.raises(InvalidSpec, match="Blue"):
        served.predictor.predict(ROWS, target_variant="Blue")
    with pytest.raises(NotFound):
        served.client.describe_endpoint("nope")


def test_metrics_and_logs(served: Served) -> None:
    served.predictor.predict(ROWS)
    variant = served.client.describe_endpoint("iris")["ProductionVariants"][0]
    assert variant["Metrics"]["invocations"] >= 1
    logs = served.client.endpoint_logs("iris")
    assert "model server" in logs
    assert variant["Instances"][0]["InstanceId"] in served.client.endpoint_logs(
        "iris", variant["Instances"][0]["InstanceId"]
    )


def test_deploy_before_fit_is_refused(served: Served) -> None:
    estimator = SKLearn(entry_point="train.py", client=served.client)
    with pytest.raises(InvalidSpec, match=r"fit\(\)"):
        estimator.deploy()


def test_model_from_a_joblib_file_deploys_updates_and_deletes(served: Served, tmp_path: Path) -> None:
    x, y = load_iris(return_X_y=True)
    joblib.dump(LogisticRegression(max_iter=500).fit(x, y), tmp_path / "model.joblib")
    model = Model(served.client.upload_file(tmp_path / "model.joblib"), client=served.client)
    predictor = model.deploy(endpoint_name="plain")
    assert isinstance(predictor, Predictor)
    assert predictor.predict(ROWS) == LABELS, "no inference script: SageMaker's scikit-learn defaults"

    broken = Model(
        str(tmp_path / "model.joblib"), env={"SAGEMAKER_PROGRAM": "missing.py"}, name="broken", client=served.client
    )
    broken.create()
    with pytest.raises(EndpointUpdateRolledBack, match=r"missing\.py"):
        predictor.update_endpoint(model_name="broken")
    assert predictor.predict(ROWS) == LABELS, "the rollback left the old fleet serving"

    predictor.delete_endpoint()
    predictor.delete_model()
    with pytest.raises(NotFound):
        predictor.predict(ROWS)
    with pytest.raises(NotFound):
        served.client.describe_endpoint_config("plain")
    with pytest.raises(NotFound):
        served.client.describe_model(model.name or "")
