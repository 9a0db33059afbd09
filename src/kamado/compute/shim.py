"""Per-task supervisor, in the spirit of containerd-shim. STANDARD LIBRARY ONLY.

Run as ``<python> -I -S /abs/path/shim.py <state_dir>``: ``-I -S`` skip ``site`` and the user's
environment so the shim starts in ~20 ms and cannot be broken by whatever the venv or the task installs.
Nothing from ``kamado`` may be imported here, for the same reason: this file is executed by path.

Why a shim at all: the control plane must be free to crash and restart while tasks keep running (T1 in
RELIABILITY.md). So the process that owns a task is not the server but this small supervisor, started in
its own session with no pipes to the server. It opens the task's log itself, enforces the wall clock, turns
a SIGTERM from ``cancel()`` into TERM-grace-KILL of the task's process group, reaps the task with
``wait4`` (for CPU time and peak memory), kills every leftover descendant, and only then records the
outcome in ``status.json`` (atomically). A task therefore ends with a recorded status and no orphans, or -
if this shim itself is killed - with no status at all, which the executor reports as ``Lost``.

Limits are rlimits on the task's processes (per process, not per tree); ``max_file_size_mb`` also caps the
task's log. The kernel does not enforce RLIMIT_NPROC for root, and counts all of a user's processes for
others (a root server's tasks each have a uid of their own); a cgroup backend is the real answer for both.

With ``run_as`` in the spec (a root server's worker user, see ``kamado/compute/worker_user.py``), the forked
child, still root, in its private mount namespace puts the task's ``private_tmp`` over ``/tmp`` and a tmpfs
of ``shm_mb`` over ``/dev/shm``, hides whatever the worker could not traverse, binding back only the spec's
``reach`` paths, then switches uid/gid for good before limits and exec (stage ``user``; a failure fails the
task, which never runs as root instead). The shim stays root, so the task cannot touch it or its files.

Files in ``<state_dir>``: ``spec.json`` (input), ``shim.json`` (this process and, once started, the task's
pid; used to detect liveness without trusting a pid alone), ``log`` (the task's stdout+stderr),
``cancel.json`` (written by the executor before it signals us; carries the grace), ``status.json``.
"""

from __future__ import annotations

import signal

# Block the signals we handle before anything else, so a cancel that arrives while we start up waits for
# us instead of killing us before we have recorded anything (the executor waits for shim.json first).
# Only when run as the shim: kamado.compute.local imports this module for its helpers, and must not block
# SIGTERM/SIGINT in the server (nor in every process the server starts, which would inherit the mask).
_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD}
if __name__ == "__main__":
    signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)

import json  # noqa: E402 - after the signal mask on purpose
import os  # noqa: E402
import stat  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs ~4 ms to import; the annotations are strings anyway
    from typing import Any

STATUS_SCHEMA = 1
#: Exit status reported when the task could not be set up (mounts under policy "require", workdir, limits).
SETUP_FAILED_EXIT = 125
#: Exit statuses reported when the command could not be executed (the shell's convention).
EXEC_NOT_EXECUTABLE_EXIT = 126
EXEC_FAILED_EXIT = 127
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

_CLONE_NEWNS = 0x00020000
_CLONE_NEWUSER = 0x10000000
_CLONE_NEWNET = 0x40000000
_SIOCGIFFLAGS, _SIOCSIFFLAGS, _IFF_UP = 0x8913, 0x8914, 0x1
_MS_NOSUID, _MS_NODEV = 0x2, 0x4
_MS_BIND = 0x1000
_MS_REC = 0x4000
_MS_PRIVATE = 1 << 18
_PR_SET_CHILD_SUBREAPER = 36
_PR_SET_NO_NEW_PRIVS = 38
_OOM_LOG_MARKERS = (b"MemoryError", b"Cannot allocate memory", b"std::bad_alloc", b"out of memory")


# --------------------------------------------------------------------------------------------- helpers


def write_json_atomic(path: str, data: dict[str, Any], *, durable: bool = False) -> None:
    """tmp + rename: a reader sees the old file or the whole new one, never a torn one.

    ``durable`` adds fsyncs so the file also survives a power cut. Only the final status needs that: the
    other files describe processes that a power cut kills anyway (the boot id then marks them lost), and
    each fsync costs milliseconds on the submit path.
    """
    tmp = f"{path}.tmp.{os.getpid()}"
    # 0600: spec.json carries the task's environment, secrets included (RELIABILITY.md, A11).
    with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600), "w") as f:
        json.dump(data, f)
        if durable:
            f.flush()
            os.fsync(f.fileno())
    os.replace(tmp, path)
    if durable:
        dfd = os.open(os.path.dirname(path) or ".", os.O_RDONLY)
        try:
            os.fsync(dfd)  # make the rename itself durable
        finally:
            os.close(dfd)


def read_json(path: str) -> Any:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def proc_stat(pid: int) -> tuple[str, int, int, int] | None:
    """(state, ppid, pgrp, starttime) from /proc/<pid>/stat, or None if there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    # comm may contain spaces and parentheses: split after the last ')'.
    fields = raw[raw.rfind(b")") + 2 :].split()
    return fields[0].decode(), int(fields[1]), int(fields[2]), int(fields[19])


def boot_id() -> str | None:
    """Distinguishes this boot from the last, so a pid + start time recorded before a reboot never matches."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip()
    except OSError:
        return None


def _oom_kill_count() -> int | None:
    """The kernel's global OOM-kill counter; a rise while the task ran points at the OOM killer."""
    try:
        with open("/proc/vmstat", "rb") as f:
            for line in f:
                if line.startswith(b"oom_kill "):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def _libc() -> tuple[Any, Any]:
    # ctypes costs ~8 ms to import, so only tasks that need it (mounts) or the post-fork parent pay.
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p]
    libc.unshare.argtypes = [ctypes.c_int]
    libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    return libc, ctypes


def _check(rc: int, ctypes: Any, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _unshare(flag: int, what: str) -> tuple[Any, Any]:
    """Enter new namespace(s) ``flag``. As root that is all; otherwise a user namespace mapping our own
    uid/gid grants the capabilities needed inside (where the kernel allows unprivileged user namespaces)."""
    libc, ctypes = _libc()
    if os.geteuid() == 0:
        _check(libc.unshare(flag), ctypes, f"unshare({what})")
    else:
        uid, gid = os.geteuid(), os.getegid()
        _check(libc.unshare(_CLONE_NEWUSER | flag), ctypes, f"unshare(CLONE_NEWUSER|{what})")
        maps = (("uid_map", f"{uid} {uid} 1"), ("setgroups", "deny"), ("gid_map", f"{gid} {gid} 1"))
        for name, text in maps:
            with open("/proc/self/" + name, "w") as f:
                f.write(text)
    return libc, ctypes


def _private_mount_namespace() -> tuple[Any, Any]:
    """Enter a new mount namespace whose mounts do not propagate back to the host."""
    libc, ctypes = _unshare(_CLONE_NEWNS, "CLONE_NEWNS")
    _check(libc.mount(None, b"/", None, _MS_REC | _MS_PRIVATE, None), ctypes, "mount --make-rprivate /")
    return libc, ctypes


def _private_network() -> None:
    """Enter a network namespace of our own: no interface but loopback, which is brought up so the task's
    own local sockets (a framework's rendezvous on 127.0.0.1, say) still work. Nothing leaves the task."""
    import fcntl
    import socket
    import struct

    _unshare(_CLONE_NEWNET, "CLONE_NEWNET")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        request = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(s, _SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(s, _SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | _IFF_UP))


def _bind_mounts(mounts: dict[str, str]) -> None:
    libc, ctypes = _private_mount_namespace()
    # Parents before children, so "/opt/ml" is in place before "/opt/ml/input".
    for target in sorted(mounts):
        source = mounts[target]
        os.makedirs(target, exist_ok=True)
        rc = libc.mount(os.fsencode(source), os.fsencode(target), None, _MS_BIND | _MS_REC, None)
        _check(rc, ctypes, f"bind-mount {source} on {target}")


def _traversable(st: os.stat_result, uid: int, gid: int) -> bool:
    """Could ``uid``/``gid`` (with no supplementary groups) pass through this directory? (ACLs aside.)"""
    if st.st_uid == uid:
        return bool(st.st_mode & 0o100)
    if st.st_gid == gid:
        return bool(st.st_mode & 0o010)
    return bool(st.st_mode & 0o001)


def _blocked_ancestors(needed: list[str], uid: int, gid: int) -> list[str]:
    """The directories to hide, shallowest first: on the way to each needed path, the first one the worker
    could not pass through and every one below it (so a directory the worker may traverse, such as the job
    directories under KAMADO_HOME, shows nothing but the way to this task's own paths). Never one inside a
    needed tree: that is kept whole."""

    def covered(d: str) -> bool:
        return any(d == p or d.startswith(p + "/") for p in needed)

    blocked: set[str] = set()
    for path in needed:
        parts = path.strip("/").split("/")
        hiding = False
        for depth in range(1, len(parts)):
            ancestor = "/" + "/".join(parts[:depth])
            if covered(ancestor):
                break
            if not hiding:
                try:
                    hiding = not _traversable(os.stat(ancestor), uid, gid)
                except OSError:
                    break
            if hiding:
                blocked.add(ancestor)
    return sorted(blocked, key=lambda d: (d.count("/"), d))


def _usable(path: str, uid: int, gid: int) -> bool:
    """A needed path worth keeping: not a directory the worker could not enter anyway (such a one, say a
    private directory on the server's ``sys.path``, would only keep what lies under it from being hidden)."""
    try:
        st = os.stat(path)
    except OSError:
        return False
    return not stat.S_ISDIR(st.st_mode) or _traversable(st, uid, gid)


def _replace_dir(directory: str, needed: list[str], mount_fresh: Any) -> None:
    """Cover ``directory`` with a fresh filesystem (``mount_fresh()`` mounts it) and bind back only the entries
    on the way to the ``needed`` paths below it, through O_PATH fds opened before the cover goes on (afterwards
    they are out of sight). The veil over what the worker could not traverse, and a task's private ``/tmp``
    and ``/dev/shm``, are all this one mechanism."""
    libc, ctypes = _libc()
    names = sorted({p[len(directory) + 1 :].split("/")[0] for p in needed if p.startswith(directory + "/")})
    kept: list[tuple[str, int]] = []
    try:
        for name in names:
            kept.append((name, os.open(os.path.join(directory, name), os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)))
        mount_fresh()
        for name, fd in kept:
            target = os.path.join(directory, name)
            if stat.S_ISDIR(os.fstat(fd).st_mode):
                os.makedirs(target, 0o755, exist_ok=True)
            else:
                os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644))
            rc = libc.mount(f"/proc/self/fd/{fd}".encode(), os.fsencode(target), None, _MS_BIND | _MS_REC, None)
            _check(rc, ctypes, f"keep {target} visible")
    finally:
        for _name, fd in kept:
            os.close(fd)


def _mount_tmpfs(directory: str, options: str) -> Any:
    def mount() -> None:
        libc, ctypes = _libc()
        rc = libc.mount(b"tmpfs", os.fsencode(directory), b"tmpfs", _MS_NOSUID | _MS_NODEV, options.encode())
        _check(rc, ctypes, f"mount a tmpfs on {directory}")

    return mount


def _mount_dir_fd(fd: int, directory: str) -> Any:
    def mount() -> None:
        libc, ctypes = _libc()
        rc = libc.mount(f"/proc/self/fd/{fd}".encode(), os.fsencode(directory), None, _MS_BIND, None)
        _check(rc, ctypes, f"bind the task's own temporary directory on {directory}")

    return mount


def _needed(paths: list[str], uid: int, gid: int) -> list[str]:
    needed = sorted({os.path.realpath(p) for p in paths if os.path.isabs(p)})
    return [p for p in needed if _usable(p, uid, gid)]


def _private_temp_dirs(private_tmp: str | None, shm_mb: int | None, needed: list[str]) -> None:
    """Give the task its own ``/tmp`` (``private_tmp``, a directory of its own on disk) and ``/dev/shm`` (a
    sticky tmpfs, ``shm_mb`` MiB or the kernel's default size), keeping reachable the needed paths under them
    (a workdir or virtualenv under /tmp). A directory that is itself inside a needed tree stays shared."""

    def inside_needed(d: str) -> bool:
        return any(d == p or d.startswith(p.rstrip("/") + "/") for p in needed)

    if private_tmp is not None:
        tmp = os.path.realpath("/tmp")
        if os.path.isdir(tmp) and not inside_needed(tmp):
            fd = os.open(private_tmp, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
            try:
                _replace_dir(tmp, needed, _mount_dir_fd(fd, tmp))
            finally:
                os.close(fd)
    shm = os.path.realpath("/dev/shm")
    if os.path.isdir(shm) and not inside_needed(shm):
        size = f",size={int(shm_mb)}m" if shm_mb else ""
        _replace_dir(shm, needed, _mount_tmpfs(shm, "mode=1777" + size))


def _expose_only(paths: list[str], uid: int, gid: int) -> None:
    """In our private mount namespace: put a bare tmpfs over every directory the worker could not traverse on
    the way to ``paths`` and bind back only the entries that lead to them, so the task reaches its interpreter
    and files and nothing else there (root's home, KAMADO_HOME's token and database, other tasks' files)."""
    needed = _needed(paths, uid, gid)
    for hidden in _blocked_ancestors(needed, uid, gid):
        _replace_dir(hidden, needed, _mount_tmpfs(hidden, "mode=0711,size=64k"))


def _become_worker(
    run_as: dict[str, Any], reach: list[str], private_tmp: str | None = None, shm_mb: int | None = None
) -> None:
    """Drop from root to the worker user for good; only the paths in ``reach`` stay reachable where the
    worker could not traverse on its own, and ``/tmp`` and ``/dev/shm`` are the task's own (when the spec
    names ``private_tmp``). Raises rather than ever leaving the task running as root."""
    uid, gid = int(run_as["uid"]), int(run_as["gid"])
    if os.geteuid() != 0:
        raise PermissionError(1, f"the supervisor runs as uid {os.geteuid()}, not root, so it cannot switch users")
    libc, ctypes = _private_mount_namespace()
    if private_tmp is not None:
        # Shallow first: /tmp is replaced before the veil covers the private directories below it (pytest's
        # 0700 ones, a KAMADO_HOME under /tmp), which then goes on top of what was bound back.
        _private_temp_dirs(private_tmp, shm_mb, _needed(reach, uid, gid))
    _expose_only(reach, uid, gid)
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)  # as root this sets the real, effective and saved uid: there is no way back
    # Nor through a setuid program (su, sudo) or file capabilities.
    _check(libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), ctypes, "prctl(PR_SET_NO_NEW_PRIVS)")
    try:
        os.setuid(0)
    except PermissionError:
        return
    raise PermissionError(1, f"uid {uid} could become root again")


def _set_limits(limits: dict[str, Any]) -> None:
    import resource

    def lower(which: int, value: int) -> None:
        # Soft and hard together, so the task cannot raise them back.
        _soft, hard = resource.getrlimit(which)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        resource.setrlimit(which, (value, value))

    mb = 1024 * 1024
    lower(resource.RLIMIT_CORE, 0)
    if limits.get("max_processes") is not None:
        lower(resource.RLIMIT_NPROC, int(limits["max_processes"]))
    if limits.get("max_file_size_mb") is not None:
        lower(resource.RLIMIT_FSIZE, int(limits["max_file_size_mb"]) * mb)
    if limits.get("memory_mb") is not None:
        lower(resource.RLIMIT_AS, int(limits["memory_mb"]) * mb)


def task_env(spec: dict[str, Any]) -> dict[str, str]:
    """The task's environment: exactly ``spec.env``, plus PATH/HOME/LANG when absent (never inherited)."""
    env = {str(k): str(v) for k, v in (spec.get("env") or {}).items()}
    env.setdefault("PATH", DEFAULT_PATH)
    env.setdefault("HOME", spec["workdir"])
    env.setdefault("LANG", "C.UTF-8")
    return env


def _os_error_text(exc: OSError) -> str:
    if exc.strerror and exc.filename:
        return f"{exc.strerror}: {exc.filename}"
    return exc.strerror or str(exc)


def _mount_warning(targets: list[str], why: str) -> bytes:
    return (
        f"kamado: private {', '.join(targets)} unavailable ({why}); SM_* variables still work. "
        "To enable: run the server as root or enable unprivileged user namespaces "
        "(sysctl kernel.unprivileged_userns_clone=1)\n"
    ).encode()


# ------------------------------------------------------------------------------------------------ child


def _child(spec: dict[str, Any], log_fd: int, err_w: int) -> None:
    """Runs in the forked child: set up, then exec. Never returns; failures go to ``err_w`` as JSON."""
    stage = "setup"
    try:
        os.setpgid(0, 0)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        # Python ignores SIGPIPE and SIGXFSZ; ignored dispositions survive exec, handled ones do not.
        for sig in (signal.SIGPIPE, signal.SIGXFSZ):
            signal.signal(sig, signal.SIG_DFL)
        if spec.get("network") == "none":
            stage = "network"  # never skipped: a task that asked for no network must not run with one
            _private_network()
        mounts = spec.get("mounts") or {}
        if mounts:
            stage = "mount"
            try:
                _bind_mounts(mounts)
            except OSError as exc:
                if spec.get("mount_policy", "auto") == "require":
                    raise
                os.write(1, _mount_warning(sorted(mounts), _os_error_text(exc)))
        if spec.get("run_as"):
            stage = "user"  # never skipped: a task that must not run as root fails instead
            _become_worker(spec["run_as"], spec.get("reach") or [], spec.get("private_tmp"), spec.get("shm_mb"))
        stage = "limits"
        _set_limits(spec.get("limits") or {})
        stage = "workdir"
        os.chdir(spec["workdir"])
        env = task_env(spec)
        stage = "exec"
        signal.pthread_sigmask(signal.SIG_SETMASK, [])
        os.execvpe(spec["command"][0], spec["command"], env)
    except BaseException as exc:  # anything here must become a reported reason, not a crash
        try:
            if isinstance(exc, OSError):
                # execvpe's filename is merely the last PATH entry it tried: leave it out.
                message = (exc.strerror or str(exc)) if stage == "exec" else _os_error_text(exc)
            else:
                message = str(exc) or type(exc).__name__
            payload = {"stage": stage, "errno": getattr(exc, "errno", None), "message": message}
            os.write(err_w, json.dumps(payload).encode())
        finally:
            if stage == "exec":
                code = EXEC_NOT_EXECUTABLE_EXIT if getattr(exc, "errno", None) == 13 else EXEC_FAILED_EXIT
            else:
                code = SETUP_FAILED_EXIT
            os._exit(code)


def _setup_failure_reason(spec: dict[str, Any], failure: dict[str, Any]) -> str:
    stage, message = failure.get("stage"), failure.get("message")
    if stage == "exec":
        hint = " (is it installed and on the task's PATH?)" if failure.get("errno") == 2 else ""
        return f"could not start {spec['command'][0]!r}: {message}{hint}"
    if stage == "mount":
        return f"mount_policy is 'require' but the private mount namespace could not be set up: {message}"
    if stage == "network":
        return f"network isolation was asked for but a private network namespace could not be set up: {message}"
    if stage == "workdir":
        return f"could not enter workdir {spec['workdir']!r}: {message}"
    if stage == "limits":
        return f"could not apply resource limits: {message}"
    if stage == "user":
        who = spec.get("run_as") or {}
        return (
            f"could not switch to the worker user (uid {who.get('uid')}, gid {who.get('gid')}), so the command was "
            f"not started (it never runs as root instead): {message}"
        )
    return f"could not set up the task: {message}"


def _setpgid(pid: int) -> None:
    """Put the child in its own group from the parent side too, closing the race with an early killpg."""
    try:
        os.setpgid(pid, pid)
    except OSError:
        return  # the child has exec'd (EACCES) or exited (ESRCH): its own setpgid already ran


def _signame(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return str(sig)


# ----------------------------------------------------------------------------------------------- parent


class Shim:
    """Supervises one task from fork to recorded status. Single-threaded, so ``os.fork`` is safe here."""

    def __init__(self, state_dir: str) -> None:
        self.state_dir = state_dir
        self.spec: dict[str, Any] = {}
        self.limits: dict[str, Any] = {}
        self.me = os.getpid()
        self.child = 0
        self.child_status: int | None = None
        self.rusage: Any = None
        self.ended_by: str | None = None  # "cancel" | "timeout"
        self.kill_at: float | None = None
        self.sent_sigkill = False
        self.started_at: float | None = None
        self.ended_at: float | None = None
        self.setup_failure: dict[str, Any] | None = None
        self.leftovers = 0

    def path(self, name: str) -> str:
        return os.path.join(self.state_dir, name)

    def run(self) -> None:
        st = proc_stat(self.me)
        info: dict[str, Any] = {"pid": self.me, "start_time": st[3] if st else None, "boot_id": boot_id()}
        write_json_atomic(self.path("shim.json"), info)
        spec = read_json(self.path("spec.json"))
        if not isinstance(spec, dict):
            raise RuntimeError(f"cannot read {self.path('spec.json')}")
        self.spec, self.limits = spec, spec.get("limits") or {}
        if os.path.exists(self.path("cancel.json")):
            self.finish(
                {
                    "state": "Stopped",
                    "reason": "cancelled before the command started",
                    "ended_at": time.time(),
                }
            )
            return
        log_fd = os.open(self.path("log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        err_r, err_w = os.pipe()  # both close-on-exec: EOF on err_r means exec succeeded
        oom_before = _oom_kill_count()
        # Before the fork, not after: a task that orphans a process in its first milliseconds must not win.
        self._become_subreaper()
        self.started_at = time.time()
        started_mono = time.monotonic()
        pid = os.fork()
        if pid == 0:
            os.close(err_r)
            _child(self.spec, log_fd, err_w)
        self.child = pid
        os.close(err_w)
        _setpgid(pid)
        failure = b""
        while chunk := os.read(err_r, 65536):
            failure += chunk
        os.close(err_r)
        os.close(log_fd)
        if failure:
            try:
                self.setup_failure = json.loads(failure.decode("utf-8", "replace"))
            except ValueError:
                self.setup_failure = {"stage": "setup", "message": failure.decode("utf-8", "replace")}
        child_st = proc_stat(pid)
        info.update(child_pid=pid, started_at=self.started_at)
        info["child_start_time"] = child_st[3] if child_st else None
        write_json_atomic(self.path("shim.json"), info)
        self.supervise(started_mono)
        self.leftovers = self.kill_leftovers()
        self.finish(self.outcome(oom_before))

    def _become_subreaper(self) -> None:
        """Adopt descendants the task orphans (``setsid`` + double fork), so none outlives the task."""
        try:
            libc, _ = _libc()
            libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        except (OSError, AttributeError):
            return  # without it, orphans that left the process group can escape; the group is still killed

    def supervise(self, started_mono: float) -> None:
        runtime = self.limits.get("max_runtime_s")
        default_grace = float(self.limits.get("stop_grace_s", 120.0))
        deadline = started_mono + float(runtime) if runtime is not None else None
        while True:
            self.reap()
            if self.child_status is not None:
                return
            if deadline is not None and time.monotonic() >= deadline and self.ended_by is None:
                self.ended_by = "timeout"
                self.terminate(default_grace)
            if self.kill_at is not None and time.monotonic() >= self.kill_at:
                self.kill_now()
            wake = [1.0]
            for t in (deadline if self.ended_by is None else None, self.kill_at):
                if t is not None:
                    wake.append(max(0.0, t - time.monotonic()))
            info = signal.sigtimedwait(_SIGNALS, min(wake))
            if info is None or info.si_signo not in (signal.SIGTERM, signal.SIGINT) or self.sent_sigkill:
                continue
            request = read_json(self.path("cancel.json")) or {}
            grace = request.get("grace_s")
            grace = float(grace) if grace is not None else default_grace
            if self.ended_by is None:
                self.ended_by = "cancel"
                self.terminate(grace)
            elif self.kill_at is not None and time.monotonic() + grace < self.kill_at:
                self.kill_at = time.monotonic() + grace  # a second cancel with a shorter grace wins

    def signal_group(self, sig: int) -> None:
        try:
            os.killpg(self.child, sig)
        except OSError:
            return  # the group is gone already

    def kill_now(self) -> None:
        self.signal_group(signal.SIGKILL)
        self.sent_sigkill = True
        self.kill_at = None

    def terminate(self, grace: float) -> None:
        if grace <= 0:
            self.kill_now()
            return
        self.signal_group(signal.SIGTERM)
        self.signal_group(signal.SIGCONT)  # a stopped process cannot act on SIGTERM
        self.kill_at = time.monotonic() + grace

    def reap(self) -> None:
        """Reap every exited child (the task, and orphans adopted as subreaper); keep the task's rusage."""
        while True:
            try:
                pid, status, rusage = os.wait4(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid == self.child:
                self.child_status, self.rusage = status, rusage
                self.ended_at = time.time()

    def kill_leftovers(self) -> int:
        """SIGKILL what is left of the task's process group and every adopted orphan; count them."""
        killed: set[int] = set()
        give_up = time.monotonic() + 10.0
        while True:
            targets = []
            for name in os.listdir("/proc"):
                if not name.isdigit() or int(name) == self.me:
                    continue
                st = proc_stat(int(name))
                if st is not None and st[0] not in ("Z", "X") and (st[2] == self.child or st[1] == self.me):
                    targets.append(int(name))
            self.signal_group(signal.SIGKILL)
            for pid in targets:
                try:
                    os.kill(pid, signal.SIGKILL)
                    killed.add(pid)
                except OSError:
                    continue
            self.reap()
            if not targets or time.monotonic() > give_up:
                break
            time.sleep(0.005)
        # Everything left among our children was SIGKILLed above: collect the zombies (bounded).
        while time.monotonic() < give_up:
            try:
                pid, _status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                time.sleep(0.005)
        return len(killed)

    def outcome(self, oom_before: int | None) -> dict[str, Any]:
        status = self.child_status if self.child_status is not None else 0
        code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else None
        sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
        ru = self.rusage
        result: dict[str, Any] = {
            "exit_code": code,
            "signal": sig,
            "oom": False,
            "started_at": self.started_at,
            "ended_at": self.ended_at or time.time(),
            "pid": self.child,
            "cpu_seconds": round(ru.ru_utime + ru.ru_stime, 6) if ru else None,
            "peak_memory_mb": round(ru.ru_maxrss / 1024.0, 3) if ru else None,
        }
        memory_mb = self.limits.get("memory_mb")
        size_mb = self.limits.get("max_file_size_mb")
        if self.setup_failure is not None:
            result.update(state="Failed", reason=_setup_failure_reason(self.spec, self.setup_failure))
        elif self.ended_by == "timeout":
            how = " (did not exit within the grace period; sent SIGKILL)" if self.sent_sigkill else ""
            runtime = self.limits["max_runtime_s"]
            result.update(state="TimedOut", reason=f"exceeded the maximum runtime of {runtime:g} s{how}")
        elif self.ended_by == "cancel":
            how = "; did not exit within the grace period, sent SIGKILL" if self.sent_sigkill else ""
            result.update(state="Stopped", reason=f"stopped on request (SIGTERM){how}")
        elif code == 0:
            result.update(state="Succeeded", reason=None)
        elif sig is not None:
            oom_after = _oom_kill_count()
            kernel_oom = oom_before is not None and oom_after is not None and oom_after > oom_before
            if sig == signal.SIGKILL and (kernel_oom or memory_mb is not None):
                limit = f" (memory limit {memory_mb} MB)" if memory_mb is not None else ""
                result.update(state="Failed", oom=True, reason=f"killed by SIGKILL: out of memory{limit}")
            elif sig == signal.SIGXFSZ:
                why = f"killed by SIGXFSZ: wrote a file larger than the {size_mb} MB file-size limit"
                result.update(state="Failed", reason=why)
            else:
                result.update(state="Failed", reason=f"killed by signal {_signame(sig)}")
        else:
            result.update(state="Failed", reason=f"the command exited with status {code}")
            tail = self._log_tail() if memory_mb is not None or size_mb is not None else b""
            if memory_mb is not None and any(marker in tail for marker in _OOM_LOG_MARKERS):
                result["oom"] = True
                result["reason"] += (
                    f": out of memory (memory limit {memory_mb} MB; the log shows an allocation failure)"
                )
            elif size_mb is not None and b"File too large" in tail:
                result["reason"] += f": a write exceeded the {size_mb} MB file-size limit (EFBIG)"
        return result

    def _log_tail(self) -> bytes:
        """The end of the log, where a traceback naming the cause of a failure usually is."""
        try:
            with open(self.path("log"), "rb") as f:
                f.seek(0, 2)
                f.seek(max(0, f.tell() - 16384))
                return f.read()
        except OSError:
            return b""

    def finish(self, result: dict[str, Any]) -> None:
        status = {
            "schema": STATUS_SCHEMA,
            "task_id": self.spec.get("task_id"),
            "state": result["state"],
            "exit_code": result.get("exit_code"),
            "signal": result.get("signal"),
            "reason": result.get("reason"),
            "oom": bool(result.get("oom")),
            "started_at": result.get("started_at"),
            "ended_at": result.get("ended_at"),
            "pid": result.get("pid"),
            "cpu_seconds": result.get("cpu_seconds"),
            "peak_memory_mb": result.get("peak_memory_mb"),
            "shim_pid": self.me,
            "sent_sigkill": self.sent_sigkill,
            "leftover_processes_killed": self.leftovers,
        }
        write_json_atomic(self.path("status.json"), status, durable=True)


def probe_mounts() -> int:
    """Exit 0 if this process may create a private mount namespace (run once by the executor)."""
    try:
        _private_mount_namespace()
    except OSError as exc:
        sys.stdout.write(f"{exc}\n")
        return 1
    return 0


def probe_network() -> int:
    """Exit 0 if this process may create a private network namespace (run once by the executor)."""
    try:
        _private_network()
    except OSError as exc:
        sys.stdout.write(f"{exc}\n")
        return 1
    return 0


def main(argv: list[str]) -> int:
    if argv[1:] == ["--probe-mounts"]:
        return probe_mounts()
    if argv[1:] == ["--probe-network"]:
        return probe_network()
    if len(argv) != 2:
        sys.stderr.write("usage: shim.py <state_dir> | --probe-mounts | --probe-network\n")
        return 2
    shim = Shim(os.path.abspath(argv[1]))
    try:
        shim.run()
    except BaseException as exc:  # the task must still end killed and recorded
        if shim.child:
            shim.signal_group(signal.SIGKILL)
        try:
            shim.finish(
                {
                    "state": "Failed",
                    "reason": f"kamado shim error: {type(exc).__name__}: {exc}",
                    "started_at": shim.started_at,
                    "ended_at": time.time(),
                    "pid": shim.child or None,
                }
            )
        except OSError:
            return 1  # nothing left to report to: the executor reports the task Lost
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
