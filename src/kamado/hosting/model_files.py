"""Bring a model's files from the artifact store onto this machine, once, for all of its instances.

A model's data (``model.tar.gz`` from a training job, or an uploaded directory) is unpacked with the
strict archive rules (no links, no escapes, size caps) into a directory named after what was unpacked,
so every instance of every endpoint that serves the same artifact shares one read-only copy, and a
server restart finds it ready. Unpacking happens in a temporary directory renamed into place: a crash
never leaves a half-unpacked model that looks complete.

Nothing here loads the model: unpickling happens only in the model-server process.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from kamado.artifacts.archives import extract_archive
from kamado.artifacts.base import ArtifactStore
from kamado.artifacts.trees import materialize_tree
from kamado.hosting.spec import ContainerDefinition
from kamado.training.service import resolve_data_uri

SUBMIT_DIRECTORY = "SAGEMAKER_SUBMIT_DIRECTORY"


@dataclass(frozen=True)
class PreparedModel:
    model_dir: Path
    #: Where the inference code lives (``SAGEMAKER_SUBMIT_DIRECTORY``), if the model names one.
    code_dir: Path | None


def prepare_model(artifacts: ArtifactStore, root: Path, container: ContainerDefinition) -> PreparedModel:
    root.mkdir(parents=True, exist_ok=True)
    model_dir = root / "empty"
    if container.ModelDataUrl:
        model_dir = _materialise(artifacts, root, container.ModelDataUrl, "PrimaryContainer.ModelDataUrl")
    else:
        model_dir.mkdir(exist_ok=True)
    code_dir = None
    submit = container.Environment.get(SUBMIT_DIRECTORY)
    if submit:
        code_dir = _materialise(artifacts, root, submit, f"PrimaryContainer.Environment.{SUBMIT_DIRECTORY}")
    return PreparedModel(model_dir=model_dir, code_dir=code_dir)


def _materialise(artifacts: ArtifactStore, root: Path, uri: str, field: str) -> Path:
    key, digest = resolve_data_uri(artifacts, uri, field=field)
    if digest:
        dest = root / f"tree-{digest}"
        if not dest.is_dir():
            _atomically(dest, lambda tmp: _tree(artifacts, digest, tmp))
        return dest
    if artifacts.exists(key):  # a single object: an archive
        ident = hashlib.sha256(f"{key}\0{artifacts.size(key)}".encode()).hexdigest()[:24]
        dest = root / f"archive-{ident}"
        if not dest.is_dir():
            _atomically(dest, lambda tmp: _unpack(artifacts, key, tmp))
        return dest
    ident = hashlib.sha256(key.encode()).hexdigest()[:24]
    dest = root / f"prefix-{ident}"
    if not dest.is_dir():  # a prefix (an uncompressed model directory)
        _atomically(dest, lambda tmp: artifacts.download_prefix(key, tmp))
    return dest


def _tree(artifacts: ArtifactStore, digest: str, dest: Path) -> None:
    """An uploaded directory as is, or, when it holds nothing but one ``.tar.gz`` (a model archive
    uploaded from a laptop), that archive unpacked, as SageMaker unpacks ``ModelDataUrl``."""
    with tempfile.TemporaryDirectory(dir=dest.parent) as scratch:
        manifest = materialize_tree(artifacts, digest, Path(scratch) / "tree")
        names = [f.path for f in manifest.files]
        if len(names) == 1 and names[0].endswith((".tar.gz", ".tgz")) and "/" not in names[0]:
            extract_archive(Path(scratch) / "tree" / names[0], dest)
        else:
            shutil.copytree(Path(scratch) / "tree", dest, dirs_exist_ok=True)


def _unpack(artifacts: ArtifactStore, key: str, dest: Path) -> None:
    with tempfile.TemporaryDirectory(dir=dest.parent) as scratch:
        archive = Path(scratch) / "model.tar.gz"
        artifacts.get_file(key, archive)
        extract_archive(archive, dest)


def _atomically(dest: Path, fill: object) -> None:
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        fill(tmp)  # type: ignore[operator]
        os.chmod(tmp, 0o755)
        try:
            tmp.rename(dest)
        except OSError:
            if not dest.is_dir():  # another preparer won the race: theirs is identical
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
