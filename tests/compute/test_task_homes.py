"""Every task gets a HOME it can write (issue 8, part 5): libraries that write ``~/.cache`` must work in a model
server (whose workdir is the shared model cache) and in a function worker (whose workdir is its read-only code),
also when a root server runs them as unprivileged uids that could never write the server's own HOME.

Checked from inside a real endpoint and a real function on a live server; on a root server the tasks run as
uids of their own, elsewhere as the server's user.
"""

from __future__ import annotations

import os
from pathlib import Path

import httpx

from kamado.sdk.functions import Function
from tests.hosting.endpoint_kit import ROW, Kit, model_archive
from tests.live_server import LiveServer

WRITE_HOME = (
    "import json, os\n"
    "def _write_home():\n"
    "    home = os.path.expanduser('~')\n"
    "    cache = os.path.join(home, '.cache', 'kamado-probe')\n"
    "    os.makedirs(cache, exist_ok=True)\n"
    "    with open(os.path.join(cache, 'written'), 'w') as f:\n"
    "        f.write('ok')\n"
    "    return {'home': home, 'uid': os.getuid(), 'cwd': os.getcwd(),\n"
    "            'read_back': open(os.path.join(cache, 'written')).read()}\n"
)
INFERENCE = WRITE_HOME + (
    "def model_fn(model_dir):\n"
    "    return _write_home()\n"
    "def predict_fn(data, model):\n"
    "    return model\n"
    "def output_fn(prediction, accept):\n"
    "    return json.dumps(prediction), 'application/json'\n"
)
HANDLER = WRITE_HOME + "def handler(event, context):\n    return _write_home()\n"


def _check_task_user(live: LiveServer, uid: int) -> None:
    executor = live.app.state.platform.executor
    if os.geteuid() == 0:
        assert executor.uids is not None and uid in executor.uids.ids, "a root server's task runs as its own uid"
    else:
        assert uid == os.geteuid()


def test_a_model_server_can_write_under_its_home(live: LiveServer, tmp_path: Path) -> None:
    code = tmp_path / "code"
    code.mkdir()
    (code / "inference.py").write_text(INFERENCE)
    model_uri = live.client.upload_file(model_archive(tmp_path / "model"))
    kit = Kit(live.client, model_uri, live.client.upload_directory(code))
    kit.model("homes")
    kit.config("homes", [{"VariantName": "AllTraffic", "ModelName": "homes", "InitialInstanceCount": 1}])
    kit.endpoint("homes", "homes")
    kit.wait("homes")
    r = httpx.post(
        kit.runtime() + "/endpoints/homes/invocations",
        content=ROW,
        headers={"Content-Type": "application/json"},
        trust_env=False,
    )
    assert r.status_code == 200, r.text
    seen = r.json()
    assert seen["read_back"] == "ok", seen
    assert seen["home"] != os.path.expanduser("~"), "the model server got the server's own HOME"
    instances = live.home / "hosting" / "instances" / "homes"
    assert Path(seen["home"]).parent == instances, "HOME is the instance's own scratch directory"
    assert (Path(seen["home"]) / ".cache" / "kamado-probe" / "written").read_text() == "ok"
    _check_task_user(live, seen["uid"])


def test_a_function_worker_can_write_under_its_home(live: LiveServer, tmp_path: Path) -> None:
    src = tmp_path / "fn-src"
    src.mkdir()
    (src / "app.py").write_text(HANDLER)
    Function.create("homes", src, "app.handler", reserved_concurrency=1, client=live.client)
    out = live.client.invoke_function("homes", {})
    seen = out["Payload"]
    assert not out.get("FunctionError") and seen["read_back"] == "ok", out
    _check_task_user(live, seen["uid"])
    if os.geteuid() == 0:
        executor = live.app.state.platform.executor
        (task_id,) = [h.task_id for h in executor.list_tasks() if h.task_id.startswith("function/homes/")]
        assert seen["home"] == str(executor.state_dir(task_id) / "home"), "HOME is the worker's own"
        assert seen["home"] != seen["cwd"], "HOME is not the function's shared, read-only code"
