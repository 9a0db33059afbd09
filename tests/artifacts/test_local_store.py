"""LocalArtifactStore: the shared contract plus what only a directory on disk can get wrong."""

from __future__ import annotations

import os
import shutil
import unicodedata
from pathlib import Path

import pytest

from kamado.artifacts.local import LocalArtifactStore
from kamado.core.errors import InvalidSpec
from kamado.testing.artifact_contract import CANARY, ArtifactStoreContract


class TestLocalArtifactStore(ArtifactStoreContract):
    @pytest.fixture
    def store(self, local_root: Path) -> LocalArtifactStore:
        return LocalArtifactStore(local_root)


@pytest.fixture
def store(tmp_path: Path) -> LocalArtifactStore:
    return LocalArtifactStore(tmp_path / "root")


@pytest.fixture
def canary(tmp_path: Path) -> Path:
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "passwd").write_bytes(CANARY)
    return secret


def test_root_uri_and_uri_name_the_absolute_root(tmp_path: Path) -> None:
    s = LocalArtifactStore(tmp_path / "created" / "on" / "demand")
    root = (tmp_path / "created" / "on" / "demand").resolve()
    assert root.is_dir()
    assert s.root_uri == f"file://{root}"
    assert s.uri("m/model.tar.gz") == f"file://{root}/m/model.tar.gz"


def test_key_from_uri_accepts_the_usual_spellings(store: LocalArtifactStore) -> None:
    root = store.root
    assert store.key_from_uri(f"file://{root}/a/b.txt") == "a/b.txt"
    assert store.key_from_uri(f"file://localhost{root}/a/b.txt") == "a/b.txt"
    assert store.key_from_uri(f"{root}/a/b.txt") == "a/b.txt"
    assert store.key_from_uri(f"file://{root}/trees/abc/") == "trees/abc"


def test_key_from_uri_handles_a_percent_encoded_root(tmp_path: Path) -> None:
    s = LocalArtifactStore(tmp_path / "with space")
    assert s.key_from_uri(s.uri("x/y")) == "x/y"
    assert s.key_from_uri(s.root.as_uri() + "/x/y") == "x/y"
    with pytest.raises(InvalidSpec):
        s.key_from_uri(s.root.as_uri() + "/%2e%2e/escape")


@pytest.mark.parametrize(
    "uri", ["file://evil.example/etc/passwd", "file:///etc/passwd", "http://localhost/x", "file:x?y#z"]
)
def test_key_from_uri_refuses_other_locations(store: LocalArtifactStore, uri: str) -> None:
    with pytest.raises(InvalidSpec) as err:
        store.key_from_uri(uri)
    assert store.root_uri in err.value.message or "not a valid artifact key" in err.value.message


def test_symlinked_directory_inside_root_cannot_reach_outside(store: LocalArtifactStore, canary: Path) -> None:
    os.symlink(canary, store.root / "link")
    with pytest.raises(InvalidSpec, match="outside the artifact store"):
        store.get_bytes("link/passwd")
    with pytest.raises(InvalidSpec):
        store.put_bytes("link/planted", b"evil")
    with pytest.raises(InvalidSpec):
        store.delete("link/passwd")
    with pytest.raises(InvalidSpec):
        list(store.list("link"))
    assert list(store.list("")) == []  # symlinked directories are not walked
    assert sorted(p.name for p in canary.iterdir()) == ["passwd"]
    assert (canary / "passwd").read_bytes() == CANARY


def test_symlinked_file_inside_root_cannot_reach_outside(store: LocalArtifactStore, canary: Path) -> None:
    os.symlink(canary / "passwd", store.root / "passwd")
    with pytest.raises(InvalidSpec):
        store.get_bytes("passwd")
    with pytest.raises(InvalidSpec):
        store.put_bytes("passwd", b"overwrite through the link")
    assert (canary / "passwd").read_bytes() == CANARY
    assert list(store.list("")) == []


def test_symlink_within_root_is_followed(store: LocalArtifactStore) -> None:
    store.put_bytes("real/data.txt", b"inside")
    os.symlink(store.root / "real", store.root / "alias")
    assert store.get_bytes("alias/data.txt") == b"inside"


def test_temporary_and_stray_files_are_not_listed(store: LocalArtifactStore) -> None:
    store.put_bytes("d/kept", b"1")
    (store.root / "d" / ".kept#kamado-tmp-0123456789abcdef").write_bytes(b"half")
    (store.root / "d" / "bad%name").write_bytes(b"stray")
    assert list(store.list("")) == ["d/kept"]


def test_failed_write_leaves_old_object_and_no_temp_file(
    store: LocalArtifactStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.put_bytes("obj", b"old")
    src = tmp_path / "src"
    src.write_bytes(b"new")

    def broken_copy(*_args: object, **_kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(shutil, "copyfileobj", broken_copy)
    with pytest.raises(OSError, match="disk full"):
        store.put_file("obj", src)
    assert store.get_bytes("obj") == b"old"
    assert sorted(p.name for p in store.root.iterdir()) == ["obj"]


def test_object_and_prefix_cannot_share_a_name(store: LocalArtifactStore) -> None:
    store.put_bytes("a/b", b"1")
    with pytest.raises(InvalidSpec, match="prefix"):
        store.put_bytes("a", b"2")
    store.put_bytes("f", b"1")
    with pytest.raises(InvalidSpec, match="not a prefix"):
        store.put_bytes("f/x", b"2")
    assert store.get_bytes("f") == b"1"


def test_objects_are_plain_files_under_root(store: LocalArtifactStore) -> None:
    store.put_bytes("jobs/tj-1/model.tar.gz", b"m")
    assert (store.root / "jobs" / "tj-1" / "model.tar.gz").read_bytes() == b"m"


def test_overlong_segment_is_a_400_not_an_oserror(store: LocalArtifactStore) -> None:
    with pytest.raises(InvalidSpec, match="255"):
        store.put_bytes("a/" + "x" * 256, b"1")


def test_root_with_url_special_characters_round_trips(tmp_path: Path) -> None:
    s = LocalArtifactStore(tmp_path / "odd#root?x")
    assert s.key_from_uri(s.uri("a/b")) == "a/b"
    assert s.key_from_uri(f"file:{s.root}/a/b") == "a/b"
    with pytest.raises(InvalidSpec):
        s.key_from_uri(s.uri("a") + "#/../../x")


def test_download_prefix_accepts_unnormalised_prefix(store: LocalArtifactStore, tmp_path: Path) -> None:
    store.put_bytes("été/a.txt", b"a")
    assert store.download_prefix(unicodedata.normalize("NFD", "été/"), tmp_path / "dl") == 1
    assert (tmp_path / "dl" / "a.txt").read_bytes() == b"a"


def test_package_exports_the_public_names() -> None:
    import kamado.artifacts as artifacts

    assert artifacts.__all__ == sorted(artifacts.__all__)
    assert artifacts.open_artifact_store is not None and artifacts.LocalArtifactStore is LocalArtifactStore
