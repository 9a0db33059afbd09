"""The SDK's transport is injectable: the same Client runs against the app in process, no socket."""

from __future__ import annotations

from pathlib import Path

import pytest

from kamado.api.app import create_app
from kamado.core.errors import NotFound
from kamado.core.settings import Settings
from kamado.sdk.client import Client
from kamado.testing.in_process import InProcessTransport


def test_client_against_the_app_in_process(tmp_path: Path) -> None:
    settings = Settings.from_env(
        home=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'k.db'}",
        artifacts_url=str(tmp_path / "art"),
        reconcile_interval_s=0.05,
    )
    transport = InProcessTransport(create_app(settings))
    client = Client(transport=transport)
    try:
        assert client.info()["executor"] == "local"
        src = tmp_path / "src"
        src.mkdir()
        (src / "train.py").write_text("print('in process')\n")
        uri = client.upload_directory(src)
        assert client.upload_directory(src) == uri, "content-addressed: the same tree, not uploaded twice"
        client.create_training_job(
            {
                "TrainingJobName": "inproc",
                "HyperParameters": {"sagemaker_program": '"train.py"', "sagemaker_submit_directory": f'"{uri}"'},
            }
        )
        desc = client.wait_for_training_job("inproc", poll_s=0.05, timeout_s=60)
        assert desc["TrainingJobStatus"] == "Completed"
        with pytest.raises(NotFound):
            client.describe_training_job("missing")
    finally:
        client.close()
        transport.close()
