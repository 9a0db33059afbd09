"""extract_archive and pack_model_dir: SageMaker's model.tar.gz shape, extracted safely (A2)."""

from __future__ import annotations

import hashlib
import io
import os
import stat
import tarfile
from pathlib import Path

import pytest

from kamado.artifacts import archives
from kamado.artifacts.archives import extract_archive, pack_model_dir
from kamado.core.errors import InvalidSpec


def make_model(root: Path) -> Path:
    (root / "code" / "__pycache__").mkdir(parents=True)
    (root / "model.joblib").write_bytes(b"\x80\x04model")
    (root / "code" / "inference.py").write_text("def model_fn(d): ...\n")
    (root / "code" / "__pycache__" / "inference.cpython-311.pyc").write_bytes(b"\x00")
    (root / "code" / "serve").write_text("#!/bin/sh\n")
    (root / "code" / "serve").chmod(0o755)
    (root / "empty").mkdir()
    return root


def test_model_tar_has_relative_entries_and_empty_dirs(tmp_path: Path) -> None:
    model = make_model(tmp_path / "model")
    digest = pack_model_dir(model, tmp_path / "model.tar.gz")
    assert digest == hashlib.sha256((tmp_path / "model.tar.gz").read_bytes()).hexdigest()
    with tarfile.open(tmp_path / "model.tar.gz", "r:gz") as tar:
        names = {t.name: t for t in tar.getmembers()}
    assert sorted(names) == [
        "code",
        "code/__pycache__",
        "code/__pycache__/inference.cpython-311.pyc",  # a model dir is shipped as is
        "code/inference.py",
        "code/serve",
        "empty",
        "model.joblib",
    ]
    assert not any(n.startswith(("./", "/")) for n in names)
    assert names["empty"].isdir()
    assert names["code/serve"].mode == 0o755


def test_model_tar_is_deterministic(tmp_path: Path) -> None:
    model = make_model(tmp_path / "model")
    first = pack_model_dir(model, tmp_path / "a.tar.gz")
    os.utime(model / "model.joblib", (99, 99))
    assert pack_model_dir(model, tmp_path / "b.tar.gz") == first


def test_model_tar_round_trips_through_safe_extraction(tmp_path: Path) -> None:
    model = make_model(tmp_path / "model")
    pack_model_dir(model, tmp_path / "model.tar.gz")
    files = extract_archive(tmp_path / "model.tar.gz", tmp_path / "out")
    assert "model.joblib" in files and "code/serve" in files
    assert (tmp_path / "out" / "model.joblib").read_bytes() == b"\x80\x04model"
    assert (tmp_path / "out" / "empty").is_dir()
    assert (tmp_path / "out" / "code" / "serve").stat().st_mode & stat.S_IXUSR


def test_model_dir_with_symlink_is_refused(tmp_path: Path) -> None:
    model = make_model(tmp_path / "model")
    os.symlink("/etc/passwd", model / "passwd")
    with pytest.raises(InvalidSpec, match="symbolic link"):
        pack_model_dir(model, tmp_path / "model.tar.gz")
    assert not (tmp_path / "model.tar.gz").exists()


@pytest.mark.parametrize("mode", ["w", "w:gz", "w:bz2", "w:xz"])
def test_extracts_plain_and_compressed_tars_with_dot_prefixes(tmp_path: Path, mode: str) -> None:
    path = tmp_path / "a.tar"
    with tarfile.open(path, mode) as tar:  # type: ignore[call-overload]
        root = tarfile.TarInfo(".")
        root.type = tarfile.DIRTYPE
        tar.addfile(root)
        info = tarfile.TarInfo("./sub/file.txt")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"hi"))
    assert extract_archive(path, tmp_path / "out") == ["sub/file.txt"]
    assert (tmp_path / "out" / "sub" / "file.txt").read_bytes() == b"hi"


def test_oversized_pax_header_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "pax.tar.gz"
    with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("a.txt")
        info.pax_headers = {"comment": "x" * (archives.MAX_METADATA_HEADER_BYTES + 1)}
        tar.addfile(info, io.BytesIO(b""))
    with pytest.raises(InvalidSpec, match="metadata header"):
        extract_archive(path, tmp_path / "out")


def test_decompressed_stream_is_capped_as_a_backstop(tmp_path: Path) -> None:
    """Metadata counts too: members under every per-header limit still cannot exceed the stream cap."""
    path = tmp_path / "padded.tar.gz"
    with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT) as tar:
        for name in ("a.txt", "b.txt"):
            info = tarfile.TarInfo(name)
            info.pax_headers = {"comment": "x" * (archives.MAX_METADATA_HEADER_BYTES - 4096)}
            tar.addfile(info, io.BytesIO(b""))
    with pytest.raises(InvalidSpec, match="decompresses to more data"):
        extract_archive(path, tmp_path / "out", max_bytes=1000, max_members=2)


def test_truncated_archive_is_refused(tmp_path: Path) -> None:
    model = make_model(tmp_path / "model")
    pack_model_dir(model, tmp_path / "m.tar.gz")
    data = (tmp_path / "m.tar.gz").read_bytes()
    (tmp_path / "cut.tar.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(InvalidSpec, match="not a readable tar archive"):
        extract_archive(tmp_path / "cut.tar.gz", tmp_path / "out")
