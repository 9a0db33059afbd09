"""open_artifact_store: URLs to backends, including the plugin entry-point group."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kamado.artifacts import factory
from kamado.artifacts.base import ArtifactStore
from kamado.artifacts.factory import BACKENDS, open_artifact_store
from kamado.artifacts.local import LocalArtifactStore
from kamado.core.errors import InvalidSpec


def test_plain_path_and_file_url_open_the_same_local_store(tmp_path: Path) -> None:
    by_path = open_artifact_store(str(tmp_path / "a"))
    by_url = open_artifact_store(f"file://{tmp_path / 'a'}")
    by_localhost = open_artifact_store(f"file://localhost{tmp_path / 'a'}")
    assert isinstance(by_path, LocalArtifactStore)
    assert by_path.root_uri == by_url.root_uri == by_localhost.root_uri
    by_path.put_bytes("k", b"v")
    assert by_url.get_bytes("k") == b"v"


def test_relative_path_is_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    s = open_artifact_store("rel/store")
    assert s.root_uri == f"file://{(tmp_path / 'rel' / 'store').resolve()}"


@pytest.mark.parametrize("url", ["file://otherhost/srv/x", "file:relative/x", "file:///srv/x?q=1"])
def test_bad_file_urls_are_refused(url: str) -> None:
    with pytest.raises(InvalidSpec, match="absolute path"):
        open_artifact_store(url)


def test_s3_opens_the_s3_backend_without_touching_the_network() -> None:
    pytest.importorskip("s3fs", reason="the s3 extra is not installed")
    store = open_artifact_store("s3://bucket/prefix?endpoint_url=http://127.0.0.1:9")
    assert type(store).__name__ == "S3ArtifactStore"
    assert store.root_uri == "s3://bucket/prefix"


@pytest.mark.parametrize("url", ["", "   ", "gs://bucket/x"])
def test_empty_and_unknown_urls_are_refused(url: str) -> None:
    with pytest.raises(InvalidSpec) as err:
        open_artifact_store(url)
    assert err.value.http_status == 400


def test_builtin_table_is_small_and_readable() -> None:
    assert sorted(BACKENDS) == ["", "file", "s3"]


def test_third_party_backend_via_entry_point(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[str] = []

    def opener(url: str) -> ArtifactStore:
        opened.append(url)
        return LocalArtifactStore(tmp_path / "plugin")

    class FakeEntryPoint:
        name = "mem"

        def load(self) -> Any:
            return opener

    def fake_entry_points(*, group: str) -> list[FakeEntryPoint]:
        assert group == "kamado.artifact_stores"
        return [FakeEntryPoint()]

    monkeypatch.setattr(factory, "entry_points", fake_entry_points)
    store = open_artifact_store("mem://anything")
    assert opened == ["mem://anything"]
    assert isinstance(store, LocalArtifactStore)
