"""Per-job Python environments for a ``requirements.txt`` in the source directory.

Built on the server's own interpreter with ``--system-site-packages`` (so numpy, scikit-learn and kamado
stay available), cached by the hash of the requirements and the interpreter, built once even when
several jobs ask at the same time (a file lock), with ``uv`` where available and ``pip`` otherwise.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.metadata
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

LogSink = Callable[[str], None]


class EnvironmentBuildError(Exception):
    """The requirements could not be installed; the message carries the installer's last lines."""


def packages_hash_of_current() -> str:
    """A hash of every distribution installed for the server's interpreter (lineage)."""
    items = sorted(
        f"{d.metadata['Name']}=={d.version}".lower() for d in importlib.metadata.distributions() if d.metadata["Name"]
    )
    return hashlib.sha256("\n".join(items).encode()).hexdigest()


class EnvironmentBuilder:
    def __init__(self, root: Path, *, base_python: str = sys.executable) -> None:
        self.root = root
        self.base_python = base_python

    def key_for(self, requirements: bytes) -> str:
        h = hashlib.sha256()
        h.update(sys.version.encode())
        h.update(self.base_python.encode())
        h.update(b"\0")
        h.update(requirements)
        return h.hexdigest()[:32]

    def ensure(self, requirements_file: Path, log: LogSink) -> tuple[str, str]:
        """Return (python executable, packages hash) of the environment for these requirements."""
        content = requirements_file.read_bytes()
        key = self.key_for(content)
        env_dir = self.root / key
        ready = env_dir / ".kamado-ready"
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / f"{key}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if ready.exists():
                log(f"kamado: reusing cached environment {key} for requirements.txt\n")
                return str(env_dir / "bin" / "python"), ready.read_text().strip()
            if env_dir.exists():
                shutil.rmtree(env_dir)  # a half-built environment from an interrupted build
            log(f"kamado: installing requirements.txt into a new environment {key}\n")
            try:
                self._build(env_dir, requirements_file, log)
            except EnvironmentBuildError:
                shutil.rmtree(env_dir, ignore_errors=True)
                raise
            self._inherit_server_packages(env_dir)
            packages_hash = self._packages_hash(env_dir)
            ready.write_text(packages_hash + "\n")
            log("kamado: requirements installed\n")
            return str(env_dir / "bin" / "python"), packages_hash

    def _build(self, env_dir: Path, requirements_file: Path, log: LogSink) -> None:
        uv = shutil.which("uv") or _uv_next_to_python()
        python = str(env_dir / "bin" / "python")
        if uv:
            steps = [
                [uv, "venv", "--quiet", "--system-site-packages", "--python", self.base_python, str(env_dir)],
                [uv, "pip", "install", "--python", python, "-r", str(requirements_file)],
            ]
        else:
            steps = [
                [self.base_python, "-m", "venv", "--system-site-packages", str(env_dir)],
                [python, "-m", "pip", "install", "--disable-pip-version-check", "-r", str(requirements_file)],
            ]
        for cmd in steps:
            tail: list[str] = []
            with subprocess.Popen(
                cmd,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                cwd=requirements_file.parent,
                errors="replace",
            ) as proc:
                assert proc.stdout is not None
                for line in proc.stdout:
                    log(line)
                    tail = [*tail, line.rstrip()][-5:]
            if proc.returncode != 0:
                last = " | ".join(x for x in tail if x)[-600:]
                raise EnvironmentBuildError(f"installing requirements.txt failed (exit {proc.returncode}): {last}")

    def _inherit_server_packages(self, env_dir: Path) -> None:
        """Make the server's own site-packages visible after the environment's own.

        ``--system-site-packages`` reaches the *base* interpreter's packages only; when the server itself
        runs in a virtual environment (the usual case) the job would lose numpy, scikit-learn and kamado.
        A ``.pth`` that calls ``site.addsitedir`` also honours the ``.pth`` files there (editable installs).
        """
        import site
        import sysconfig

        parents = [p for p in dict.fromkeys([*site.getsitepackages(), sysconfig.get_paths()["purelib"]]) if p]
        for site_dir in (env_dir / "lib").glob("python*/site-packages"):
            lines = "".join(f"import site; site.addsitedir({p!r})\n" for p in parents)
            (site_dir / "zz_kamado_server_packages.pth").write_text(lines)

    def _packages_hash(self, env_dir: Path) -> str:
        out = subprocess.run(
            [
                str(env_dir / "bin" / "python"),
                "-c",
                "import importlib.metadata as m,hashlib;"
                "i=sorted(f\"{d.metadata['Name']}=={d.version}\".lower() for d in m.distributions() "
                "if d.metadata['Name']);print(hashlib.sha256(chr(10).join(i).encode()).hexdigest())",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        return out.stdout.strip() or "unknown"


def _uv_next_to_python() -> str | None:
    candidate = Path(sys.executable).parent / "uv"
    return str(candidate) if candidate.exists() else None
