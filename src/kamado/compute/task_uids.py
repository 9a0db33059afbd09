"""A uid (and gid) of its own for every task of a root server, from a range no one else uses.

Why: tasks that share one user (``nobody``) can signal and ptrace one another and read one another's
``/proc/<pid>/environ``, which holds each task's injected secrets, and ``RLIMIT_NPROC`` counts all their
processes together. With a uid each, the kernel keeps them apart as it keeps two people's processes apart.

The ids need no ``/etc/passwd`` entry: the kernel knows only numbers. By default 4096 of them from
2,100,000,000 - below 2**31 (tools that read ids as signed 32-bit numbers stay correct), far above what
``useradd`` hands out and the usual ``/etc/subuid`` ranges of rootless containers. ``KAMADO_WORKER_UIDS``
(``FIRST:COUNT``) moves the range. The gid is the uid, so a task's group gives it nothing either.

Which task holds which id is kept on disk, like GPU assignments (``compute/gpus.py``): ``uid.json`` in the
task's state directory, written under an ``flock`` on the executor root itself (no file of its own there, so
a root whose tasks are all cleaned up is empty), so the allocation survives a server restart and two submits
never pick the same id. An id stays held until the task's state directory is removed (``cleanup``, which
only an ended task allows): by then the supervisor has killed every process of the task. Ids are handed out
round robin (after the last one given, after the newest still held when the server starts, or from a random
place on a root with none held), so a freed id is reused late; an id that has a passwd or group entry, or a
running process, is skipped.

Two servers on one machine hold their own records: give them disjoint ranges (the running-process check
only narrows a clash to the moment between allocation and the task's start).
"""

from __future__ import annotations

import fcntl
import grp
import json
import logging
import os
import pwd
import random
from dataclasses import dataclass
from pathlib import Path

from kamado.compute.worker_user import RunAs
from kamado.core.errors import InvalidSpec, LimitExceeded

log = logging.getLogger("kamado.compute")

RANGE_ENV = "KAMADO_WORKER_UIDS"
DEFAULT_FIRST = 2_100_000_000
DEFAULT_COUNT = 4096
UID_FILE = "uid.json"
_MAX_ID = 2**31 - 1


@dataclass(frozen=True)
class UidRange:
    """``count`` ids from ``first``; each task gets one as its uid and gid."""

    first: int
    count: int

    @property
    def last(self) -> int:
        return self.first + self.count - 1

    def __contains__(self, uid: object) -> bool:
        return isinstance(uid, int) and self.first <= uid <= self.last

    def describe(self) -> str:
        """What ``/api/v1/info`` (``workerUser``) and ``kamado doctor`` show."""
        return f"a uid of its own per task, from {self.first} ({self.count} ids; gid = uid)"


def parse_uid_range(text: str | None) -> UidRange:
    """``KAMADO_WORKER_UIDS`` (``FIRST:COUNT``; empty: the default). InvalidSpec naming it when malformed."""
    if not text or not text.strip():
        return UidRange(DEFAULT_FIRST, DEFAULT_COUNT)
    first_text, sep, count_text = text.strip().partition(":")
    if sep and first_text.isdigit() and count_text.isdigit():
        first, count = int(first_text), int(count_text)
        if first >= 65536 and count >= 1 and first + count - 1 <= _MAX_ID:
            return UidRange(first, count)
    raise InvalidSpec(
        f"{RANGE_ENV} is {text!r}; give FIRST:COUNT with FIRST at least 65536 and FIRST+COUNT-1 at most {_MAX_ID}, "
        f"for ids no user or container on this machine uses (default {DEFAULT_FIRST}:{DEFAULT_COUNT}).",
        details=[{"field": RANGE_ENV, "message": "expected FIRST:COUNT, e.g. 2100000000:4096"}],
    )


def range_problem(ids: UidRange) -> str | None:
    """Why tasks could not switch to ids of this range here, or None. A server inside a user namespace (a
    container) can only become the uids and gids its namespace maps."""
    for name in ("uid_map", "gid_map"):
        try:
            with open(f"/proc/self/{name}") as f:
                extents = [tuple(int(x) for x in line.split()) for line in f if line.strip()]
        except (OSError, ValueError):
            continue  # no such file: no user namespaces in this kernel, every id is usable
        if not any(inside <= ids.first and ids.last < inside + length for inside, _outside, length in extents):
            return f"/proc/self/{name} does not map {ids.first}-{ids.last} (this server runs in a user namespace)"
    return None


def overlapping_subids(ids: UidRange) -> list[str]:
    """Entries of ``/etc/subuid`` and ``/etc/subgid`` (rootless containers' ids) that overlap the range."""
    found = []
    for path in ("/etc/subuid", "/etc/subgid"):
        try:
            with open(path) as f:
                lines = f.read().splitlines()
        except OSError:
            continue
        for line in lines:
            parts = line.strip().split(":")
            if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
                start, length = int(parts[1]), int(parts[2])
                if start <= ids.last and ids.first < start + length:
                    found.append(f"{path}: {line.strip()}")
    return found


def per_task_uids(root: Path, text: str | None) -> TaskUids | None:
    """The pool of per-task ids for an executor rooted at ``root`` (``text``: ``KAMADO_WORKER_UIDS`` when None),
    or None where the kernel cannot give them: tasks then share ``nobody``, and the log says why."""
    ids = parse_uid_range(text if text is not None else os.environ.get(RANGE_ENV))
    problem = range_problem(ids)
    if problem is not None:
        log.warning(
            "tasks share the user nobody instead of a uid each: %s; set %s=FIRST:COUNT to a mapped range",
            problem,
            RANGE_ENV,
        )
        return None
    for entry in overlapping_subids(ids):
        log.warning(
            "the tasks' uid range %d-%d overlaps subordinate ids of rootless containers (%s); set %s to another",
            ids.first,
            ids.last,
            entry,
            RANGE_ENV,
        )
    return TaskUids(root, ids)


class TaskUids:
    """Hands out the ids of ``ids`` to tasks whose state directories live under ``root``. Thread- and
    process-safe (an ``flock``); ``assign`` is idempotent per state directory."""

    def __init__(self, root: Path, ids: UidRange) -> None:
        self.root = root
        self.ids = ids
        #: Offset in the range to try first: after the last id this object gave (None: after the newest held).
        self._next: int | None = None

    def of(self, state_dir: Path) -> RunAs | None:
        """The id the task in ``state_dir`` was given, or None."""
        try:
            data = json.loads((state_dir / UID_FILE).read_text())
            uid, gid = int(data["uid"]), int(data["gid"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return RunAs(uid=uid, gid=gid, name=str(uid))

    def held(self) -> dict[int, str]:
        """uid → the task (state directory name) holding it, for every task not yet cleaned up."""
        return {uid: name for uid, (name, _when) in self._records().items()}

    def _records(self) -> dict[int, tuple[str, int]]:
        out: dict[int, tuple[str, int]] = {}
        for state_dir in self.root.iterdir():
            run_as = self.of(state_dir) if state_dir.is_dir() else None
            if run_as is not None:
                try:
                    when = (state_dir / UID_FILE).stat().st_mtime_ns
                except OSError:
                    when = 0
                out[run_as.uid] = (state_dir.name, when)
        return out

    def assign(self, state_dir: Path, *, task_id: str) -> RunAs:
        """The task's own uid/gid (the same again if it was given one before)."""
        fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            existing = self.of(state_dir)
            if existing is not None:
                return existing
            records = self._records()
            held = {uid: name for uid, (name, _when) in records.items()}
            busy = self._running_uids()
            start = self._start(records)
            for step in range(self.ids.count):
                offset = (start + step) % self.ids.count
                uid = self.ids.first + offset
                if uid in held or uid in busy or _has_entry(uid):
                    continue
                _write_atomic(state_dir / UID_FILE, json.dumps({"uid": uid, "gid": uid}))
                self._next = (offset + 1) % self.ids.count
                return RunAs(uid=uid, gid=uid, name=str(uid))
            raise LimitExceeded(
                f"Task '{task_id}' needs a uid of its own, but all {self.ids.count} of {self.ids.first}-"
                f"{self.ids.last} are held by tasks not yet cleaned up ({len(held)}) or in use. It can start when "
                f"one is cleaned up; a larger range ({RANGE_ENV}=FIRST:COUNT) allows more at once."
            )
        finally:
            os.close(fd)

    def _start(self, records: dict[int, tuple[str, int]]) -> int:
        if self._next is not None:
            return self._next
        ours = [(when, uid) for uid, (_name, when) in records.items() if uid in self.ids]
        if ours:
            return (max(ours)[1] - self.ids.first + 1) % self.ids.count
        # A fresh root starts at a random place, so two servers sharing a range rarely reach for one id at once.
        return random.randrange(self.ids.count)

    def _running_uids(self) -> set[int]:
        """Ids of the range that some process runs as: a task's leftover, or someone else using the range."""
        found = set()
        for name in os.listdir("/proc"):
            if name.isdigit():
                try:
                    uid = os.stat(f"/proc/{name}").st_uid
                except OSError:
                    continue
                if uid in self.ids:
                    found.add(uid)
        return found


def _has_entry(uid: int) -> bool:
    """An id some user or group of this machine has: never hand it to a task."""
    for lookup in (pwd.getpwuid, grp.getgrgid):
        try:
            lookup(uid)
        except KeyError:
            continue
        log.warning("uid/gid %d in the tasks' range belongs to an account on this machine; it is skipped", uid)
        return True
    return False


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + f".tmp.{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)
