"""Gangs on the Ray executor: the alike tasks of one multi-instance job (``TaskSpec.gang``) reserved at once.

Why: Ray places actors one by one, so a 3-instance job on a busy cluster could start two instances and
leave them waiting, holding their CPUs, for a third that may not fit for hours - and two such jobs can
block each other for good. A Ray *placement group* reserves all of its bundles atomically or none of them,
so every member actor of a gang is scheduled into the gang's group and none starts before all can.

The group is detached and named after the gang and the executor's root, so a restarted server (same root)
finds it again by name and two servers sharing one cluster never share a group. It holds its reservation
until removed, whether its actors have exited or not; so it is removed as soon as every member has
recorded a verdict, and again (idempotently) when the last member is cleaned up.

The control plane's book of a gang lives under ``<root>/.gangs/<gang>/``: ``gang.json`` (size, bundle,
group name) and one empty file per member task under ``members/`` - no ``ray`` import here.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import Any

from kamado.compute import shim as _shim
from kamado.compute.task_state import safe_name
from kamado.compute.taskspec import TaskSpec
from kamado.core.errors import InvalidSpec

#: SPREAD is soft in Ray: instances go to different nodes where there is room, share one where not.
STRATEGY = "SPREAD"
GANG_PREFIX = "kamado-gang:"
GANGS_DIR = ".gangs"


def bundle_of(spec: TaskSpec) -> dict[str, float]:
    """What one member reserves, in Ray's resource names (zero amounts left out, as Ray requires)."""
    res = spec.resources
    asked = {"CPU": float(res.cpus), "GPU": float(res.gpus), "memory": float(res.memory_mb or 0) * 1024 * 1024}
    return {key: value for key, value in asked.items() if value > 0}


def is_gang(spec: TaskSpec) -> bool:
    """A gang of one, or of tasks that reserve nothing, needs no group: Ray starts it whole anyway."""
    return bool(spec.gang) and spec.gang_size > 1 and bool(bundle_of(spec))


def how_many_fit(bundle: dict[str, float], nodes: list[dict[str, float]]) -> int:
    """How many ``bundle``s the cluster's nodes hold at once when it is empty (alike bundles pack per node)."""
    return sum(min(int(node.get(key, 0.0) // value) for key, value in bundle.items()) for node in nodes)


def group_name(root: Path, gang: str) -> str:
    return f"{GANG_PREFIX}{safe_name(gang)}:{hashlib.sha256(str(root).encode()).hexdigest()[:12]}"


def _gang_dir(root: Path, gang: str) -> Path:
    return root / GANGS_DIR / safe_name(gang)


def join(root: Path, spec: TaskSpec, member: str) -> dict[str, Any]:
    """Record ``member`` (a task's directory name) in its gang's book and return the book. A member that
    disagrees with the book on the gang's size or bundle is refused: the group's bundles are all alike."""
    assert spec.gang is not None
    gang_dir = _gang_dir(root, spec.gang)
    (gang_dir / "members").mkdir(parents=True, exist_ok=True, mode=0o700)
    mine = {"gang": spec.gang, "size": spec.gang_size, "bundle": bundle_of(spec), "group": group_name(root, spec.gang)}
    book_path = gang_dir / "gang.json"
    tmp = gang_dir / f"gang.json.{os.getpid()}.{member}"
    _shim.write_json_atomic(str(tmp), mine)
    try:
        os.link(tmp, book_path)
    except FileExistsError:
        pass  # the first member wrote the book; it stands
    finally:
        tmp.unlink(missing_ok=True)
    book = _shim.read_json(str(book_path)) or mine
    if (book["size"], book["bundle"]) != (mine["size"], mine["bundle"]):
        raise InvalidSpec(
            f"Task '{spec.task_id}' joins gang '{spec.gang}' as one of {spec.gang_size} with {mine['bundle']}, "
            f"but the gang was started as {book['size']} of {book['bundle']}; every member must ask for the same.",
            details=[{"field": "gang_size"}, {"field": "resources"}],
        )
    (gang_dir / "members" / member).touch()
    return dict(book)


def book(root: Path, gang: str) -> dict[str, Any] | None:
    data = _shim.read_json(str(_gang_dir(root, gang) / "gang.json"))
    return data if isinstance(data, dict) else None


def all_ended(root: Path, gang: str) -> bool:
    """True when all ``size`` members have joined and each has a recorded verdict."""
    found = book(root, gang)
    if found is None:
        return False
    members = [p.name for p in (_gang_dir(root, gang) / "members").iterdir()]
    return len(members) >= int(found["size"]) and all((root / m / "status.json").exists() for m in members)


def leave(root: Path, gang: str, member: str) -> str | None:
    """Strike ``member`` from the book; returns the group's name when it was the last (the book goes too)."""
    gang_dir = _gang_dir(root, gang)
    found = book(root, gang)
    (gang_dir / "members" / member).unlink(missing_ok=True)
    members = gang_dir / "members"
    if found is None or (members.is_dir() and any(members.iterdir())):
        return None
    shutil.rmtree(gang_dir, ignore_errors=True)
    return str(found["group"])
