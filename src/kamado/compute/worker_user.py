"""Who a task runs as, and what it must be able to reach when that is not the server's own user.

Why: a server running as root would otherwise run every job, endpoint and function as root (issue 8,
part 5). With ``worker_user`` at its default ``auto``, a root server runs each task as a uid of its own
(``task_uids.py``; ``nobody`` for all of them where the kernel cannot give it those ids), so tasks cannot
signal, trace or read one another either; an explicit user (``name`` or ``uid[:gid]``) runs every task as
that one user; any other server runs them as itself, as before. The drop itself happens in the shim
(``shim.py``, stage ``user``):
still root, in the task's private mount namespace, it hides every directory on the way to the paths the
task needs that the worker could not traverse (root's home, ``KAMADO_HOME``), keeping only those paths,
then gives up root for good. This module decides the user and prepares the files on the server's side:

- trees the task writes (``TaskSpec.writable``; by default its workdir and mount sources) are handed to the worker
  (``chown``, never following a symlink, so a link a task planted cannot hand it another file);
- a task with no HOME in its environment whose workdir it cannot write gets a HOME of its own;
- trees it only reads (``TaskSpec.readable``: a shared model cache, a function's code) are made readable
  by all (``a+rX``) but stay the server's, so one task cannot change what another reads;
- it gets a ``/tmp`` of its own on disk and a ``/dev/shm`` of its own (a tmpfs capped from its memory limit);
- the paths it must reach (the interpreter, the server's ``sys.path``, its workdir, mount sources,
  ``writable``/``readable``, absolute paths in its command) travel in ``spec.json`` for the shim.
"""

from __future__ import annotations

import logging
import os
import pwd
import shutil
import stat
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from kamado.compute.taskspec import TaskSpec
from kamado.core.errors import InvalidSpec

log = logging.getLogger("kamado.compute")

AUTO = "auto"
#: The user a root server's tasks run as under ``auto`` where they cannot have a uid each; 65534 where the
#: machine has no such entry.
UNPRIVILEGED = "nobody"
_NOBODY_ID = 65534


@dataclass(frozen=True)
class RunAs:
    """An unprivileged user tasks run as: the shim drops to ``uid``/``gid`` with no supplementary groups."""

    uid: int
    gid: int
    name: str

    def describe(self) -> str:
        return f"{self.name} (uid {self.uid}, gid {self.gid})"

    def to_json(self) -> dict[str, int]:
        return {"uid": self.uid, "gid": self.gid}


def resolve_worker_user(value: str) -> RunAs | None:
    """The setting ``worker_user`` (``KAMADO_WORKER_USER``, ``--worker-user``) as a user to drop to, or None
    when tasks run as the server's own user. Raises InvalidSpec naming the setting when it cannot be honoured."""
    value = (value or AUTO).strip()
    euid = os.geteuid()
    if value == AUTO:
        return _lookup(UNPRIVILEGED, fallback=True) if euid == 0 else None
    wanted = _lookup(value, fallback=False)
    if wanted.uid == euid:
        if euid == 0:
            log.warning(
                "worker_user is %r: tasks run as root, with every right of the server's user. "
                "Unset KAMADO_WORKER_USER (or --worker-user) to run each as an unprivileged uid of its own.",
                value,
            )
        return None
    if euid != 0:
        raise InvalidSpec(
            f"worker_user is {value!r} but the server runs as uid {euid}, which cannot switch users; "
            "unset KAMADO_WORKER_USER (tasks then run as the server's user) or run the server as root.",
            details=[{"field": "worker_user", "message": "switching users needs a server running as root"}],
        )
    return wanted


def describe_task_user(run_as: RunAs | None) -> str:
    """What ``/api/v1/info`` and ``kamado doctor`` show."""
    if run_as is not None:
        return run_as.describe()
    euid = os.geteuid()
    try:
        name = pwd.getpwuid(euid).pw_name
    except KeyError:
        name = str(euid)
    suffix = " - not dropped: set KAMADO_WORKER_USER=auto to run tasks unprivileged" if euid == 0 else ""
    return f"{name} (uid {euid}, the server's own user{suffix})"


def _lookup(value: str, *, fallback: bool) -> RunAs:
    uid_text, _, gid_text = value.partition(":")
    if uid_text.isdigit() and (not gid_text or gid_text.isdigit()):
        uid = int(uid_text)
        if uid >= 2**32 - 1 or (gid_text and int(gid_text) >= 2**32 - 1):
            raise InvalidSpec(
                f"worker_user {value!r} is out of range; uids and gids are 0..4294967294.",
                details=[{"field": "worker_user", "message": "out of range"}],
            )
        try:
            entry = pwd.getpwuid(uid)
            name, default_gid = entry.pw_name, entry.pw_gid
        except KeyError:
            name, default_gid = str(uid), uid
        return RunAs(uid=uid, gid=int(gid_text) if gid_text else default_gid, name=name)
    try:
        entry = pwd.getpwnam(value)
    except KeyError:
        if fallback:
            return RunAs(uid=_NOBODY_ID, gid=_NOBODY_ID, name=value)
        raise InvalidSpec(
            f"worker_user names the user {value!r}, which does not exist on this machine; create it "
            f"(useradd --system {value}), name another user or give uid[:gid], or use 'auto'.",
            details=[{"field": "worker_user", "message": f"no such user: {value!r}"}],
        ) from None
    return RunAs(uid=entry.pw_uid, gid=entry.pw_gid, name=entry.pw_name)


# ----------------------------------------------------------------------------------- the task's files


def writable_trees(spec: TaskSpec) -> list[str]:
    """The spec's ``writable``; by default its workdir and mount sources (its private working tree)."""
    return [spec.workdir, *spec.mounts.values()] if spec.writable is None else list(spec.writable)


def hand_over(spec: TaskSpec, run_as: RunAs) -> None:
    """Give the worker its writable trees and make its read-only ones readable; called at submit, before
    the task starts (so nothing of the task runs yet that could race the walk)."""
    for top in writable_trees(spec):
        for path, st in _walk(top):
            if st.st_uid != run_as.uid or st.st_gid != run_as.gid:
                os.chown(path, run_as.uid, run_as.gid, follow_symlinks=False)
    for top in spec.readable:
        for path, st in _walk(top):
            wanted = st.st_mode | 0o444 | (0o111 if stat.S_ISDIR(st.st_mode) or st.st_mode & 0o111 else 0)
            if stat.S_IMODE(wanted) != stat.S_IMODE(st.st_mode):
                os.chmod(path, stat.S_IMODE(wanted))


def needs_private_home(spec: TaskSpec) -> bool:
    """Whether the task needs a HOME of its own: a task without HOME in its environment gets its workdir (see
    ``shim.task_env``), which the worker cannot write when the workdir is shared and read-only (a model server
    started in the model cache, a function worker in its code), so libraries writing ``~/.cache`` would fail."""
    if "HOME" in spec.env:
        return False
    workdir = os.path.realpath(spec.workdir)
    for tree in writable_trees(spec):
        top = os.path.realpath(tree)
        if workdir == top or workdir.startswith(top.rstrip("/") + "/"):
            return False
    return True


def make_private_home(state_dir: Path, run_as: RunAs) -> str:
    """``home/`` in the task's state directory, the worker's own (0700): removed with the state directory at
    cleanup. The shim keeps it reachable while it hides the rest of the state directory from the task."""
    home = state_dir / "home"
    home.mkdir(mode=0o700, exist_ok=True)
    os.chown(home, run_as.uid, run_as.gid, follow_symlinks=False)
    return str(home)


#: The smallest ``/dev/shm`` a task gets (Docker's default), so a small memory limit still leaves room for a
#: PyTorch DataLoader's shared-memory batches.
MIN_SHM_MB = 64


def make_private_tmp(state_dir: Path, run_as: RunAs) -> str:
    """``tmp/`` in the task's state directory, the worker's own (sticky, 1777 like ``/tmp``): the shim binds it
    over ``/tmp`` in the task's mount namespace, so what a task leaves there is neither seen by another task nor
    found by the next one given the same uid, and is removed with the state directory at cleanup. On disk, not
    a tmpfs: ML jobs write large temporary files (extracted datasets, compiler caches) that must not count
    against the machine's RAM."""
    tmp = state_dir / "tmp"
    tmp.mkdir(exist_ok=True)
    os.chown(tmp, run_as.uid, run_as.gid, follow_symlinks=False)
    os.chmod(tmp, 0o1777)  # after mkdir: the umask would drop bits, and mkdir may ignore the sticky bit
    return str(tmp)


def shm_size_mb(spec: TaskSpec) -> int | None:
    """The size of the task's own ``/dev/shm`` tmpfs: half its memory limit (or reservation), at least
    ``MIN_SHM_MB``; None (the kernel's default, half the machine's RAM, as the host's) when it has neither.
    Its pages are freed when the task's last process exits and its mount namespace goes."""
    memory_mb = spec.limits.memory_mb if spec.limits.memory_mb is not None else spec.resources.memory_mb
    return None if memory_mb is None else max(MIN_SHM_MB, memory_mb // 2)


def _walk(top: str) -> Iterator[tuple[str, os.stat_result]]:
    """Every directory and regular file under ``top`` (itself included), never through a symlink."""
    try:
        st = os.lstat(top)
    except FileNotFoundError:
        return
    if not (stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode)):
        return
    yield top, st
    if not stat.S_ISDIR(st.st_mode):
        return
    for root, dirs, files in os.walk(top, followlinks=False):
        for name in (*dirs, *files):
            path = os.path.join(root, name)
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                continue
            if stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode):
                yield path, st


def reach_paths(spec: TaskSpec) -> list[str]:
    """Every path the task must be able to reach, for the shim to keep when it hides what the worker could
    not traverse anyway. Sorted and without duplicates."""
    paths: set[str] = set()
    paths.update(_interpreter_paths())
    paths.update(_command_paths(spec))
    paths.add(spec.workdir)
    paths.update(spec.mounts)  # the targets (bound before the shim hides anything) and the sources
    paths.update(spec.mounts.values())
    paths.update(writable_trees(spec))
    paths.update(spec.readable)
    return sorted(p for p in paths if os.path.isabs(p))


def _interpreter_paths() -> set[str]:
    """The server's interpreter and import path: tasks run ``sys.executable`` and import kamado from it."""
    found = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix, sys.executable}
    found.update(p for p in sys.path if p and os.path.exists(p))
    return found


def _command_paths(spec: TaskSpec) -> set[str]:
    """The command's executable (as found on the task's PATH) with its virtualenv and base installation,
    and the absolute paths among its arguments (a script, a model directory)."""
    found: set[str] = set()
    program = spec.command[0]
    exe = program if os.path.isabs(program) else shutil.which(program, path=spec.env.get("PATH"))
    if exe:
        found.update(_with_virtualenv(exe))
    found.update(arg for arg in spec.command[1:] if os.path.isabs(arg) and os.path.exists(arg))
    return found


def _with_virtualenv(exe: str) -> Iterable[str]:
    yield exe
    yield os.path.realpath(exe)
    venv = Path(exe).parent.parent
    cfg = venv / "pyvenv.cfg"
    if not cfg.is_file():
        return
    yield str(venv)
    try:
        lines = cfg.read_text().splitlines()
    except OSError:
        return
    for line in lines:
        key, _, value = line.partition("=")
        if key.strip() == "home" and value.strip():
            yield str(Path(value.strip()).parent)  # the base installation the venv's python comes from
