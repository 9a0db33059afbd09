"""T12 for processing jobs: a secret referenced from a processing job's Environment reaches its process,
and its value shows up nowhere else (logs, ExitMessage, FailureReason, the stored spec, files under
KAMADO_HOME); credentials in plain text and references to missing secrets are refused at create."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

import kamado
from kamado.core.errors import InvalidSpec
from kamado.sdk.processing import ProcessingJobFailed
from tests.live_server import LiveServer
from tests.security.test_secrets_canary import _files_containing

SCRIPT = """
import os
value = os.environ["API_KEY"]
print("the key is", value, flush=True)
root = "/opt/ml" if os.path.isdir("/opt/ml/processing") else os.environ["KAMADO_OPT_ML"]
os.makedirs(os.path.join(root, "output"), exist_ok=True)
open(os.path.join(root, "output", "message"), "w").write("exit with " + value)
raise RuntimeError("rejected key " + value)
"""


def _processor(live: LiveServer, env: dict[str, str]) -> kamado.ScriptProcessor:
    return kamado.ScriptProcessor(command=["python3"], instance_count=1, env=env, client=live.client)


def test_processing_job_gets_the_secret_and_never_shows_it(live: LiveServer, tmp_path: Path) -> None:
    canary = secrets.token_hex(32)
    ref = live.client.create_secret("svc/api-key", canary)["Reference"]
    script = tmp_path / "process.py"
    script.write_text(SCRIPT)
    processor = _processor(live, {"API_KEY": ref})
    with pytest.raises(ProcessingJobFailed):
        processor.run(code=str(script), logs=False)
    desc = processor.latest_job.describe()
    assert desc["ProcessingJobStatus"] == "Failed"
    assert desc["Environment"] == {"API_KEY": ref}, "describe shows the reference, not the value"
    assert desc["FailureReason"] == "algo-1: exit with ***", "the failure file's text, masked"
    assert desc["ExitMessage"] == "exit with ***"
    logs = processor.latest_job.logs()
    assert "the key is ***" in logs, "the process received the value (and its log masks it)"
    assert "rejected key ***" in logs, "the traceback is masked too"
    assert canary not in repr(desc) + logs
    # The one file that holds it is the one the job's own code wrote (its /opt/ml/output/message, kept
    # because the job failed): user output is the user's data, as a model file would be.
    leaks = _files_containing(live.home, canary.encode())
    assert [p.split("/", 2)[-1] for p in leaks] == ["algo-1/opt-ml/output/message"], leaks


def test_plain_credentials_and_missing_secrets_are_refused_at_create(live: LiveServer, tmp_path: Path) -> None:
    script = tmp_path / "process.py"
    script.write_text("print('never runs')\n")
    with pytest.raises(InvalidSpec, match=r"Environment\.AWS_KEY") as plain:
        _processor(live, {"AWS_KEY": "AKIAABCDEFGHIJKLMNOP"}).run(code=str(script), logs=False)
    assert "AKIAABCDEFGHIJKLMNOP" not in str(plain.value)
    with pytest.raises(InvalidSpec, match="no-such-secret"):
        _processor(live, {"X": "{{resolve:secretsmanager:no-such-secret}}"}).run(code=str(script), logs=False)
    assert live.client.list_processing_jobs()["ProcessingJobSummaries"] == [], "nothing was created"
