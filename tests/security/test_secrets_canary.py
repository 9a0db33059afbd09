"""T12: a real training job receives a secret in its environment; the value never shows up anywhere else.

The job prints the secret and then fails with it in the exception: its stored log, its archived log,
describe output and FailureReason show ``***``; no file under KAMADO_HOME (SQLite database and WAL,
artifact store, job directories) holds the plaintext.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

import kamado
from kamado.core.errors import InvalidSpec
from tests.live_server import LiveServer, write_script

SCRIPT = """
import os
value = os.environ["DB_PASSWORD"]
print("the password is", value, flush=True)
print("json form:", {"pw": value}, flush=True)
raise RuntimeError("could not log in with " + value)
"""


def _files_containing(root: Path, needle: bytes) -> list[str]:
    hits = []
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            try:
                if needle in path.read_bytes():
                    hits.append(str(path.relative_to(root)))
            except OSError:
                continue
    return hits


def test_injected_secret_is_redacted_everywhere(live: LiveServer, tmp_path: Path) -> None:
    canary = secrets.token_hex(32)
    meta = live.client.create_secret("db/password", canary, description="canary")
    assert canary not in repr(meta) and meta["Reference"] == "{{resolve:secretsmanager:db/password}}"
    est = kamado.Estimator(
        entry_point="train.py",
        source_dir=write_script(tmp_path / "src", SCRIPT),
        client=live.client,
        environment={"DB_PASSWORD": meta["Reference"]},
    )
    est.fit(wait=False)
    name = est.latest_training_job.name
    desc = live.wait(name)
    assert desc["TrainingJobStatus"] == "Failed"
    assert "could not log in with ***" in desc["FailureReason"]
    assert desc["Environment"] == {"DB_PASSWORD": "{{resolve:secretsmanager:db/password}}"}
    logs = "".join(e["Message"] for e in live.client.training_job_logs(name, limit=10_000)["Events"])
    assert "the password is ***" in logs and "{'pw': '***'}" in logs
    everything = repr(desc) + logs + repr(live.client.list_secrets()) + repr(live.client.describe_secret("db/password"))
    assert canary not in everything
    archived = desc.get("LogArtifacts")
    assert archived, "the archived log exists (and is checked below with the rest of the home)"
    assert _files_containing(live.home, canary.encode()) == []


def test_rotation_reaches_the_next_job_and_master_key_rotation_keeps_values(live: LiveServer, tmp_path: Path) -> None:
    live.client.create_secret("token", "first-value-1234")
    live.client.rotate_secret("token", "second-value-5678")
    assert live.client.describe_secret("token")["Version"] == 2
    assert live.client.rotate_master_key()["ReencryptedVersions"] == 2
    script = "import os\nprint('got', os.environ['T'] == 'second-value-5678', os.environ['T'])\n"
    est = kamado.Estimator(
        entry_point="train.py",
        source_dir=write_script(tmp_path / "src", script),
        client=live.client,
        environment={"T": "{{resolve:ssm-secure:token}}"},
    )
    est.fit(logs=False)
    logs = est.latest_training_job.logs()
    assert "got True ***" in logs and "second-value" not in logs


@pytest.mark.parametrize(
    ("field", "value", "where"),
    [
        ("HyperParameters", {"aws_key": "AKIAIOSFODNN7EXAMPLE"}, "HyperParameters.aws_key"),
        ("Environment", {"API_TOKEN": "c2VjcmV0LXRva2VuLXZhbHVlLTEyMzQ1"}, "Environment.API_TOKEN"),
        ("Environment", {"X": "{{resolve:secretsmanager:missing}}"}, "Environment.X"),
    ],
)
def test_credentials_and_missing_references_are_refused_at_create(
    live: LiveServer, tmp_path: Path, field: str, value: dict[str, str], where: str
) -> None:
    est = kamado.Estimator(
        entry_point="train.py",
        source_dir=write_script(tmp_path / "src", "print(1)\n"),
        client=live.client,
        **({"hyperparameters": value} if field == "HyperParameters" else {"environment": value}),
    )
    with pytest.raises(InvalidSpec) as err:
        est.fit(wait=False)
    assert where in [d["field"] for d in err.value.details]
    (bad,) = value.values()
    assert bad not in err.value.message or bad.startswith("{{resolve:")
    assert live.client.list_training_jobs()["TrainingJobSummaries"] == []


def test_cli_secrets_round_trip_never_prints_the_value(live: LiveServer, tmp_path: Path) -> None:
    env = {**os.environ, "KAMADO_URL": live.url, "KAMADO_HOME": str(tmp_path / "client-home")}
    env.pop("KAMADO_TOKEN", None)

    def kamado_cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "kamado", *args], env=env, input=stdin, capture_output=True, text=True, timeout=60
        )

    value = secrets.token_hex(16)
    out = kamado_cli("secrets", "create", "api/key", "--description", "third party", stdin=value + "\n")
    assert out.returncode == 0, out.stderr
    assert kamado_cli("secrets", "rotate", "api/key", stdin="next-" + value).returncode == 0
    listed = kamado_cli("secrets", "list", "-o", "json")
    assert [(s["Name"], s["Version"]) for s in json.loads(listed.stdout)] == [("api/key", 2)]
    described = kamado_cli("secrets", "describe", "api/key")
    assert json.loads(described.stdout)["Description"] == "third party"
    assert value not in listed.stdout + described.stdout + out.stdout
    assert kamado_cli("secrets", "delete", "api/key").returncode == 0
    missing = kamado_cli("secrets", "describe", "api/key")
    assert missing.returncode == 2 and "Could not find secret 'api/key'" in missing.stderr
    events = live.client.list_audit_events(Action="CreateSecret")["AuditEvents"]
    assert events and value not in repr(events)
