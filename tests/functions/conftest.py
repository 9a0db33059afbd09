"""A function source tree with a handler for every behaviour the tests need."""

from __future__ import annotations

from pathlib import Path

import pytest

HANDLERS = r"""
import os, time, json, tempfile

CALLS = {}

def echo(event, context):
    return {"event": event, "rid": context.aws_request_id, "mem": context.memory_limit_in_mb,
            "left": context.get_remaining_time_in_millis(), "cwd": os.getcwd(), "tmp": tempfile.gettempdir(),
            "env": os.environ.get("GREETING")}

def boom(event, context):
    raise ValueError("bad input: " + str(event))

def sleepy(event, context):
    time.sleep(event.get("s", 10))
    return "woke"

def hog(event, context):
    blocks = []
    while True:
        blocks.append(bytearray(50 * 1024 * 1024))

def scratch(event, context):
    seen = sorted(os.listdir("."))
    with open("leftover.txt", "w") as f:
        f.write("x")
    return {"seen": seen, "pid": os.getpid()}

def square(event, context):
    return event["x"] * event["x"]

def flaky(event, context):
    # fails the first time it sees an item whose x is a multiple of 97 (state kept in a marker file)
    x = event["x"]
    if x % 97 == 0:
        marker = os.path.join(os.environ["MARKERS"], str(x))
        if not os.path.exists(marker):
            open(marker, "w").close()
            raise RuntimeError("flaky " + str(x))
    if x % 1000 == 999 and os.environ.get("HARD") == "1":
        raise RuntimeError("always fails " + str(x))
    return x * 2

def batch_sum(event, context):
    return [it["x"] + 1 for it in event["Items"]]

def bad_async(event, context):
    raise RuntimeError("nope")

def die(event, context):
    import sys
    print("goodbye from the handler", file=sys.stderr, flush=True)
    os._exit(event.get("code", 7))

def die_once(event, context):
    # the worker dies (exit 9) the first time it meets item 37: the calls queued behind it were never run
    marker = os.path.join(os.environ["MARKERS"], "died")
    if event["x"] == 37 and not os.path.exists(marker):
        open(marker, "w").close()
        os._exit(9)
    return event["x"]

def inc(event, context):
    return event + 1

def whoami(event, context):
    return {"pid": os.getpid(), "ppid": os.getppid()}
"""


@pytest.fixture
def code_dir(tmp_path: Path) -> Path:
    d = tmp_path / "fn-src"
    d.mkdir()
    (d / "app.py").write_text(HANDLERS)
    return d
