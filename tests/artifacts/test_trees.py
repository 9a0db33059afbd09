"""Content-addressed trees: manifests, deterministic packing, safe upload (A2), verified materialisation."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import stat
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from kamado.artifacts import trees
from kamado.artifacts.base import ArtifactStore
from kamado.artifacts.hashing import sha256_bytes, validate_digest
from kamado.artifacts.local import LocalArtifactStore
from kamado.artifacts.trees import (
    TreeManifest,
    load_tree_manifest,
    manifest_of_dir,
    materialize_tree,
    pack_dir,
    store_tree_from_archive,
    tree_exists,
    tree_uri,
)
from kamado.core.errors import InvalidSpec, KamadoError, NotFound


def make_source(root: Path) -> Path:
    (root / "pkg" / "sub").mkdir(parents=True)
    (root / "train.py").write_text("print('train')\n")
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "sub" / "data.csv").write_text("a,b\n1,2\n")
    (root / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (root / "run.sh").chmod(0o755)
    (root / "données.txt").write_text("é")
    (root / "__pycache__").mkdir()
    (root / "__pycache__" / "train.cpython-311.pyc").write_bytes(b"\x00")
    (root / "pkg" / "stale.pyc").write_bytes(b"\x00")
    (root / ".git").mkdir()
    (root / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (root / ".DS_Store").write_bytes(b"\x00")
    return root


@pytest.fixture
def src(tmp_path: Path) -> Path:
    return make_source(tmp_path / "src")


@pytest.fixture
def store(tmp_path: Path) -> LocalArtifactStore:
    return LocalArtifactStore(tmp_path / "store")


# -- manifests ---------------------------------------------------------------------------------------


def test_manifest_lists_regular_files_sorted_without_litter(src: Path) -> None:
    m = manifest_of_dir(src)
    assert [f.path for f in m.files] == [
        "données.txt",
        "pkg/__init__.py",
        "pkg/sub/data.csv",
        "run.sh",
        "train.py",
    ]
    by_path = {f.path: f for f in m.files}
    assert by_path["run.sh"].executable and not by_path["train.py"].executable
    assert by_path["pkg/sub/data.csv"].sha256 == sha256_bytes(b"a,b\n1,2\n")
    assert by_path["pkg/__init__.py"].size == 0
    assert m.total_bytes == sum(f.size for f in m.files) == (src / "train.py").stat().st_size + 8 + 2 + 18
    assert m.digest == hashlib.sha256(m.canonical_bytes()).hexdigest()
    assert validate_digest(m.digest) == m.digest


def test_manifest_json_is_canonical_and_round_trips(src: Path) -> None:
    m = manifest_of_dir(src)
    text = m.to_json()
    assert text == json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"))
    assert TreeManifest.from_json(text) == m
    assert TreeManifest.from_json(text.encode(), expected_digest=m.digest) == m


def test_digest_ignores_mtime_but_not_content_or_mode(src: Path) -> None:
    before = manifest_of_dir(src).digest
    os.utime(src / "train.py", (1, 1))
    assert manifest_of_dir(src).digest == before
    (src / "train.py").chmod(0o755)
    flipped = manifest_of_dir(src).digest
    assert flipped != before
    (src / "train.py").chmod(0o644)
    (src / "train.py").write_text("print('changed')\n")
    assert manifest_of_dir(src).digest not in (before, flipped)


def test_same_content_elsewhere_has_same_digest(tmp_path: Path) -> None:
    assert manifest_of_dir(make_source(tmp_path / "a")).digest == manifest_of_dir(make_source(tmp_path / "b")).digest


def test_symlink_in_source_is_refused_by_name(src: Path) -> None:
    os.symlink("/etc", src / "pkg" / "etc")
    with pytest.raises(InvalidSpec, match=r"'pkg/etc' is a symbolic link to '/etc'"):
        manifest_of_dir(src)


def test_fifo_in_source_is_refused(src: Path) -> None:
    os.mkfifo(src / "pipe")
    with pytest.raises(InvalidSpec, match="'pipe' is a device, FIFO or socket"):
        manifest_of_dir(src)


def test_not_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidSpec, match="not a directory"):
        manifest_of_dir(tmp_path / "missing")


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda items: items.__setitem__(0, {**items[0], "path": "../x"}), "manifest path"),
        (lambda items: items.reverse(), "sorted"),
        (lambda items: items.append(dict(items[-1])), "sorted"),
        (lambda items: items[0].__setitem__("extra", 1), "exactly"),
        (lambda items: items[0].__setitem__("size", True), "size"),
        (lambda items: items[0].__setitem__("size", -1), "size"),
        (lambda items: items[0].__setitem__("executable", "yes"), "executable"),
        (lambda items: items[0].__setitem__("sha256", "ABC"), "SHA-256"),
    ],
)
def test_from_json_refuses_malformed_manifests(
    src: Path, mutate: Callable[[list[dict[str, object]]], None], reason: str
) -> None:
    items = json.loads(manifest_of_dir(src).to_json())
    mutate(items)
    with pytest.raises(InvalidSpec, match=reason):
        TreeManifest.from_json(json.dumps(items))


def test_from_json_checks_the_expected_digest(src: Path) -> None:
    m = manifest_of_dir(src)
    with pytest.raises(InvalidSpec, match="hashes to"):
        TreeManifest.from_json(m.to_json(), expected_digest="0" * 64)
    with pytest.raises(InvalidSpec, match="not JSON"):
        TreeManifest.from_json("{nope")


# -- deterministic packing ---------------------------------------------------------------------------


def test_pack_is_deterministic(src: Path, tmp_path: Path) -> None:
    m1 = pack_dir(src, tmp_path / "one.tar.gz")
    os.utime(src / "train.py", (12345, 12345))
    m2 = pack_dir(src, tmp_path / "two.tar.gz")
    assert m1 == m2
    assert (tmp_path / "one.tar.gz").read_bytes() == (tmp_path / "two.tar.gz").read_bytes()


def test_packed_archive_has_normalised_entries(src: Path, tmp_path: Path) -> None:
    m = pack_dir(src, tmp_path / "a.tar.gz")
    raw = (tmp_path / "a.tar.gz").read_bytes()
    assert raw[4:8] == b"\x00\x00\x00\x00"  # gzip header mtime
    with tarfile.open(tmp_path / "a.tar.gz") as tar:
        members = tar.getmembers()
    assert [t.name for t in members] == [f.path for f in m.files]
    assert all(t.isreg() and t.mtime == 0 and t.uid == 0 and t.gid == 0 and t.uname == "" for t in members)
    assert {t.name: t.mode for t in members}["run.sh"] == 0o755
    assert {t.name: t.mode for t in members}["train.py"] == 0o644


def test_file_changing_during_pack_is_refused(src: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = trees.sha256_file

    def stale_hash(path: Path) -> tuple[str, int]:
        digest, size = real(path)
        return ("0" * 64, size) if path.name == "train.py" else (digest, size)

    monkeypatch.setattr(trees, "sha256_file", stale_hash)
    with pytest.raises(InvalidSpec, match=r"'train\.py' changed while it was being packed"):
        pack_dir(src, tmp_path / "a.tar.gz")
    assert not (tmp_path / "a.tar.gz").exists()
    assert list(tmp_path.glob("*kamado-tmp*")) == []


# -- store and materialise ---------------------------------------------------------------------------


def test_round_trip_restores_files_and_executable_bits(src: Path, tmp_path: Path, store: ArtifactStore) -> None:
    m = pack_dir(src, tmp_path / "code.tar.gz")
    assert not tree_exists(store, m.digest)
    stored = store_tree_from_archive(store, tmp_path / "code.tar.gz", m.digest)
    assert stored == m
    assert tree_exists(store, m.digest)
    assert load_tree_manifest(store, m.digest) == m

    old_umask = os.umask(0o077)
    try:
        out = materialize_tree(store, m.digest, tmp_path / "out")
    finally:
        os.umask(old_umask)
    assert out == m
    for f in m.files:
        target = tmp_path / "out" / f.path
        assert target.read_bytes() == (src / f.path).read_bytes()
        assert bool(target.stat().st_mode & stat.S_IXUSR) == f.executable
    assert stat.S_IMODE((tmp_path / "out" / "run.sh").stat().st_mode) == 0o755
    assert not (tmp_path / "out" / "__pycache__").exists()
    assert not (tmp_path / "out" / ".git").exists()


def test_tree_layout_and_uri(src: Path, tmp_path: Path, store: ArtifactStore) -> None:
    m = pack_dir(src, tmp_path / "code.tar.gz")
    store_tree_from_archive(store, tmp_path / "code.tar.gz", m.digest)
    keys = list(store.list("trees"))
    assert f"trees/{m.digest}.manifest.json" in keys
    assert sorted(k for k in keys if not k.endswith(".manifest.json")) == [
        f"trees/{m.digest}/{f.path}" for f in m.files
    ]
    assert store.get_bytes(f"trees/{m.digest}.manifest.json") == m.canonical_bytes()
    assert tree_uri(store, m.digest) == store.uri(f"trees/{m.digest}")
    assert store.key_from_uri(tree_uri(store, m.digest)) == f"trees/{m.digest}"


class RecordingStore(LocalArtifactStore):
    """Records writes and can fail the n-th put_file, to observe ordering and crash recovery."""

    def __init__(self, root: Path, fail_on_put: int | None = None) -> None:
        super().__init__(root)
        self.writes: list[str] = []
        self.fail_on_put = fail_on_put

    def put_file(self, key: str, local_path: Path) -> None:
        if self.fail_on_put is not None and len(self.writes) + 1 == self.fail_on_put:
            raise OSError("simulated crash")
        self.writes.append(key)
        super().put_file(key, local_path)

    def put_bytes(self, key: str, data: bytes) -> None:
        self.writes.append(key)
        super().put_bytes(key, data)


def test_manifest_is_written_last_and_upload_is_idempotent(src: Path, tmp_path: Path) -> None:
    store = RecordingStore(tmp_path / "rec")
    m = pack_dir(src, tmp_path / "code.tar.gz")
    store_tree_from_archive(store, tmp_path / "code.tar.gz", m.digest)
    assert store.writes[-1] == f"trees/{m.digest}.manifest.json"
    assert len(store.writes) == len(m.files) + 1

    # Same content packed from another directory: deduplicated, nothing uploaded again.
    store.writes.clear()
    m2 = pack_dir(make_source(tmp_path / "copy"), tmp_path / "again.tar.gz")
    assert m2.digest == m.digest
    assert store_tree_from_archive(store, tmp_path / "again.tar.gz", m.digest) == m
    assert store.writes == []


def test_interrupted_upload_leaves_no_tree_and_retry_completes(src: Path, tmp_path: Path) -> None:
    m = pack_dir(src, tmp_path / "code.tar.gz")
    crashing = RecordingStore(tmp_path / "s", fail_on_put=3)
    with pytest.raises(OSError, match="simulated crash"):
        store_tree_from_archive(crashing, tmp_path / "code.tar.gz", m.digest)
    assert not tree_exists(crashing, m.digest)
    with pytest.raises(NotFound, match="upload it first"):
        materialize_tree(crashing, m.digest, tmp_path / "out")

    retry = LocalArtifactStore(tmp_path / "s")
    assert store_tree_from_archive(retry, tmp_path / "code.tar.gz", m.digest) == m
    assert materialize_tree(retry, m.digest, tmp_path / "out") == m


def test_digest_mismatch_is_refused_and_stores_nothing(src: Path, tmp_path: Path, store: ArtifactStore) -> None:
    pack_dir(src, tmp_path / "code.tar.gz")
    other = "ab" * 32
    with pytest.raises(InvalidSpec, match="recompute the digest") as err:
        store_tree_from_archive(store, tmp_path / "code.tar.gz", other)
    assert err.value.details == [{"field": "expected_digest", "message": "does not match the archive"}]
    assert list(store.list("")) == []


@pytest.mark.parametrize("bad", ["", "ABCD" * 16, "0" * 63, "0" * 65, "../" + "0" * 61, "g" * 64])
def test_malformed_digests_are_refused(bad: str, src: Path, tmp_path: Path, store: ArtifactStore) -> None:
    pack_dir(src, tmp_path / "code.tar.gz")
    for call in (
        lambda: store_tree_from_archive(store, tmp_path / "code.tar.gz", bad),
        lambda: tree_exists(store, bad),
        lambda: tree_uri(store, bad),
        lambda: materialize_tree(store, bad, tmp_path / "out"),
    ):
        with pytest.raises(InvalidSpec, match="64 lowercase hexadecimal"):
            call()
    assert list(store.list("")) == []


def test_corrupted_object_is_detected_on_materialise(src: Path, tmp_path: Path, store: ArtifactStore) -> None:
    m = pack_dir(src, tmp_path / "code.tar.gz")
    store_tree_from_archive(store, tmp_path / "code.tar.gz", m.digest)
    store.put_bytes(f"trees/{m.digest}/train.py", b"print('tampered')\n")
    with pytest.raises(KamadoError, match=r"'train\.py' does not match its manifest") as err:
        materialize_tree(store, m.digest, tmp_path / "out")
    assert err.value.http_status == 500
    assert not (tmp_path / "out" / "train.py").exists()
    assert list((tmp_path / "out").rglob("*kamado-tmp*")) == []


def test_missing_object_is_reported_as_incomplete_tree(src: Path, tmp_path: Path, store: ArtifactStore) -> None:
    m = pack_dir(src, tmp_path / "code.tar.gz")
    store_tree_from_archive(store, tmp_path / "code.tar.gz", m.digest)
    store.delete(f"trees/{m.digest}/run.sh")
    with pytest.raises(KamadoError, match=r"incomplete.*'run\.sh' is missing"):
        materialize_tree(store, m.digest, tmp_path / "out")


def test_tampered_manifest_is_detected(src: Path, tmp_path: Path, store: ArtifactStore) -> None:
    m = pack_dir(src, tmp_path / "code.tar.gz")
    store_tree_from_archive(store, tmp_path / "code.tar.gz", m.digest)
    store.put_bytes(f"trees/{m.digest}.manifest.json", m.to_json().replace("train.py", "trainx.py").encode())
    with pytest.raises(KamadoError, match="corrupt"):
        load_tree_manifest(store, m.digest)


def test_materialise_does_not_follow_symlinks_in_dest(src: Path, tmp_path: Path, store: ArtifactStore) -> None:
    m = pack_dir(src, tmp_path / "code.tar.gz")
    store_tree_from_archive(store, tmp_path / "code.tar.gz", m.digest)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "out").mkdir()
    os.symlink(elsewhere, tmp_path / "out" / "pkg")
    with pytest.raises(InvalidSpec, match="outside"):
        materialize_tree(store, m.digest, tmp_path / "out")
    assert list(elsewhere.iterdir()) == []


# -- A2: hostile archives ----------------------------------------------------------------------------


def _tar_gz(path: Path, build: Callable[[tarfile.TarFile], None]) -> Path:
    with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT) as tar:
        build(tar)
    return path


def _add(tar: tarfile.TarFile, name: str, data: bytes = b"x", **attrs: object) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    for k, v in attrs.items():
        setattr(info, k, v)
    tar.addfile(info, io.BytesIO(data) if info.isreg() else None)


def _snapshot(base: Path) -> dict[str, bytes]:
    return {p.relative_to(base).as_posix(): p.read_bytes() for p in sorted(base.rglob("*")) if p.is_file()}


HOSTILE: dict[str, tuple[Callable[[tarfile.TarFile], None], str]] = {
    "dotdot": (lambda t: _add(t, "../../evil.txt"), "unsafe name"),
    "dotdot-inside": (lambda t: _add(t, "ok/../../evil.txt"), "unsafe name"),
    "absolute": (lambda t: _add(t, "/tmp/kamado-evil.txt"), "absolute path"),
    "symlink-to-etc": (
        lambda t: (_add(t, "etc", type=tarfile.SYMTYPE, linkname="/etc"), _add(t, "etc/passwd")),
        "symbolic link",
    ),
    "relative-symlink": (lambda t: _add(t, "up", type=tarfile.SYMTYPE, linkname="../.."), "symbolic link"),
    "hardlink": (lambda t: _add(t, "passwd", type=tarfile.LNKTYPE, linkname="/etc/passwd"), "hard link"),
    "char-device": (lambda t: _add(t, "null", type=tarfile.CHRTYPE, devmajor=1, devminor=3), "device node"),
    "block-device": (lambda t: _add(t, "sda", type=tarfile.BLKTYPE, devmajor=8, devminor=0), "device node"),
    "fifo": (lambda t: _add(t, "pipe", type=tarfile.FIFOTYPE), "FIFO"),
    "backslash": (lambda t: _add(t, "..\\..\\evil.txt"), "unsafe name"),
    "encoded": (lambda t: _add(t, "..%2f..%2fevil.txt"), "unsafe name"),
    "lookalike-dots": (lambda t: _add(t, "\u2024\u2024/evil.txt"), "unsafe name"),
    "duplicate": (lambda t: (_add(t, "a.txt", b"1"), _add(t, "a.txt", b"2")), "appears twice"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_archives_are_refused_and_write_nothing(case: str, tmp_path: Path) -> None:
    build, reason = HOSTILE[case]
    work = tmp_path / "work"
    work.mkdir()
    archive = _tar_gz(tmp_path / "evil.tar.gz", build)
    store = LocalArtifactStore(work / "srv" / "store")
    before = _snapshot(tmp_path)
    with pytest.raises(InvalidSpec, match=reason) as err:
        store_tree_from_archive(store, archive, "0" * 64)
    assert err.value.http_status == 400
    assert _snapshot(tmp_path) == before
    assert list(store.list("")) == []
    assert not Path("/tmp/kamado-evil.txt").exists()


def test_oversized_archive_stops_at_the_cap(tmp_path: Path, store: ArtifactStore) -> None:
    archive = _tar_gz(tmp_path / "big.tar.gz", lambda t: (_add(t, "a", b"0" * 600), _add(t, "b", b"0" * 600)))
    with pytest.raises(InvalidSpec, match="more than 1000 bytes uncompressed"):
        store_tree_from_archive(store, archive, "0" * 64, max_bytes=1000)
    assert list(store.list("")) == []


def test_too_many_members_stops_at_the_cap(tmp_path: Path, store: ArtifactStore) -> None:
    archive = _tar_gz(tmp_path / "many.tar.gz", lambda t: [_add(t, f"f{i}") for i in range(10)])
    with pytest.raises(InvalidSpec, match="more than 5 members"):
        store_tree_from_archive(store, archive, "0" * 64, max_members=5)
    assert list(store.list("")) == []


def test_bomb_header_is_refused_before_its_data_is_read(tmp_path: Path, store: ArtifactStore) -> None:
    """A header claiming 1 TB: refused at the header; the (absent) data is never decompressed."""
    path = tmp_path / "bomb.tar.gz"
    info = tarfile.TarInfo("huge.bin")
    info.size = 10**12
    with gzip.open(path, "wb") as gz:
        gz.write(info.tobuf(format=tarfile.PAX_FORMAT))
    with pytest.raises(InvalidSpec, match="uncompressed"):
        store_tree_from_archive(store, path, "0" * 64)


def test_compressed_zeros_bomb_is_capped(tmp_path: Path, store: ArtifactStore) -> None:
    path = tmp_path / "zeros.tar.gz"
    zeros = b"\x00" * (8 * 1024 * 1024)
    _tar_gz(path, lambda t: _add(t, "zeros.bin", zeros))
    assert path.stat().st_size < 64 * 1024
    with pytest.raises(InvalidSpec, match="uncompressed"):
        store_tree_from_archive(store, path, "0" * 64, max_bytes=1024 * 1024)


def test_garbage_is_not_a_tar(tmp_path: Path, store: ArtifactStore) -> None:
    (tmp_path / "junk.tar.gz").write_bytes(b"\x1f\x8b" + os.urandom(200))
    with pytest.raises(InvalidSpec, match="not a readable tar archive"):
        store_tree_from_archive(store, tmp_path / "junk.tar.gz", "0" * 64)
