"""End to end: a server on PostgreSQL + S3 runs an unchanged script-mode job; the model lands in the bucket.

The server is a real ``kamado server`` subprocess configured only through the environment (as a
cluster deployment would be), the metadata store is a real PostgreSQL database and the artifact store
is a real S3-compatible server (moto) on loopback. The bucket is then read with s3fs directly.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import kamado
from kamado.sdk.client import Client
from tests.live_server import write_script
from tests.scaleout.s3server import FAKE_ENV, S3Server, s3_server  # noqa: F401
from tests.scaleout.server_proc import running_server

TRAIN = """
import json, os
rows = open(os.path.join(os.environ["SM_CHANNEL_TRAIN"], "data.csv")).read().splitlines()
with open(os.path.join(os.environ["SM_MODEL_DIR"], "model.json"), "w") as fh:
    json.dump({"rows": len(rows), "lr": float(os.environ["SM_HP_LR"])}, fh)
print("train-rows: %d;" % len(rows))
"""


def test_training_job_on_postgresql_and_s3(tmp_path: Path, pg_url: str, s3_server: S3Server) -> None:  # noqa: F811
    import s3fs

    prefix = s3_server.new_prefix()
    env = {
        **FAKE_ENV,
        "KAMADO_DATABASE_URL": pg_url,
        "KAMADO_ARTIFACTS": f"s3://{s3_server.bucket}/{prefix}",
        "KAMADO_S3_ENDPOINT_URL": s3_server.endpoint,
    }
    data = tmp_path / "data"
    data.mkdir()
    (data / "data.csv").write_text("a,b\n1,2\n3,4\n")
    src = write_script(tmp_path / "src", TRAIN)
    with running_server(tmp_path / "home", **env) as url, Client(url, autostart=False) as client:
        assert client.info()["artifactStore"] == f"s3://{s3_server.bucket}/{prefix}"
        est = kamado.Estimator(
            entry_point="train.py",
            source_dir=src,
            hyperparameters={"lr": 0.5},
            metric_definitions=[{"Name": "rows", "Regex": "train-rows: ([0-9]+);"}],
            client=client,
        )
        est.fit({"train": str(data)}, logs=False)
        desc = est.latest_training_job.describe()  # type: ignore[union-attr]
    assert desc["TrainingJobStatus"] == "Completed", desc.get("FailureReason")
    model_uri = desc["ModelArtifacts"]["S3ModelArtifacts"]
    assert model_uri.startswith(f"s3://{s3_server.bucket}/{prefix}/")
    assert model_uri.endswith("/output/model.tar.gz")

    fs = s3fs.S3FileSystem(endpoint_url=s3_server.endpoint, skip_instance_cache=True, use_listings_cache=False)
    with tarfile.open(fileobj=io.BytesIO(fs.cat_file(model_uri)), mode="r:gz") as tar:
        member = tar.extractfile("model.json")
        assert member is not None
        assert member.read() == b'{"rows": 3, "lr": 0.5}'
    everything = fs.find(f"{s3_server.bucket}/{prefix}")
    assert f"{model_uri[len('s3://') :]}" in everything
    assert not any("kamado-probe" in name for name in everything)  # the start-up probe cleaned up after itself
