"""The artifact store contract: every ``ArtifactStore`` backend must pass these tests.

Subclass :class:`ArtifactStoreContract` and provide a ``store`` pytest fixture yielding a fresh, empty
store. A backend that keeps objects on the local disk should root itself at the ``local_root`` fixture
(``<outside>/srv/root``): the traversal corpus then aims straight at canary files planted in ``outside``
(``../../etc/passwd`` from that root *is* ``<outside>/etc/passwd``), and every traversal test checks that
nothing outside the root was created, changed or deleted (RELIABILITY A1, T11).
"""

from __future__ import annotations

import threading
import unicodedata
from collections.abc import Callable
from pathlib import Path

import pytest

from kamado.artifacts.base import ArtifactStore
from kamado.core.errors import InvalidSpec, NotFound

CANARY = b"canary: must never be read, written or deleted through an artifact store\n"

#: Keys that must be refused (InvalidSpec, HTTP 400) by every method, prefixes included.
TRAVERSAL_CORPUS: list[object] = [
    "../../etc/passwd",
    "..%2f..%2fetc%2fpasswd",
    "%252e%252e%252f",
    "%252e%252e%252fetc%252fpasswd",
    "%2e%2e/x",
    "..%c0%af..%c0%afetc",
    "..\\..\\x",
    "a\\..\\..\\x",
    "/etc/passwd",
    "//proc/self/root/etc/passwd",
    "file:///etc/",
    "s3://other-bucket/x",
    "C:/Windows/win.ini",
    "a/#/../../../etc/",
    "a?/../../x",
    "a%00.txt",
    "a\x00.txt",
    "a\r\nb",
    "\x1b[31mred",
    "\u202egnp.exe",
    pytest.param("k" * 1025, id="1025-byte-key"),
    pytest.param("é" * 513, id="1026-utf8-byte-key"),
    "a/\u2024\u2024/b",
    "a/\uff0e\uff0e/b",
    "a/\u3002\u3002/b",
    "\u2024\u2024/etc/passwd",
    "a/\u2215../b",
    "a//b",
    "..",
    ".",
    "a/./b",
    "a/../../x",
    "a/..",
    "...",
    "....//....//etc",
]

#: Refused for keys naming an object, but meaningful as listing prefixes ('' = everything, 'a/' = 'a').
KEY_ONLY_BAD: list[object] = ["", "a/"]

KEY_METHODS = [
    "uri",
    "key_from_uri",
    "put_bytes",
    "put_file",
    "get_bytes",
    "get_file",
    "open_read",
    "exists",
    "size",
    "delete",
]
PREFIX_METHODS = ["list", "download_prefix"]


def _snapshot(base: Path, exclude: Path) -> dict[str, tuple[bytes, int, int]]:
    """Every file under ``base`` outside ``exclude``: contents, mtime and mode."""
    snap: dict[str, tuple[bytes, int, int]] = {}
    for path in sorted(base.rglob("*")):
        if path == exclude or exclude in path.parents or not path.is_file():
            continue
        st = path.stat()
        snap[path.relative_to(base).as_posix()] = (path.read_bytes(), st.st_mtime_ns, st.st_mode)
    return snap


def _call(store: ArtifactStore, method: str, key: str, tmp: Path) -> object:
    src = tmp / "upload.bin"
    src.write_bytes(b"evil payload")
    calls: dict[str, Callable[[str], object]] = {
        "uri": store.uri,
        "key_from_uri": lambda k: store.key_from_uri(f"{store.root_uri}/{k}"),
        "put_bytes": lambda k: store.put_bytes(k, b"evil payload"),
        "put_file": lambda k: store.put_file(k, src),
        "get_bytes": store.get_bytes,
        "get_file": lambda k: store.get_file(k, tmp / "download" / "out.bin"),
        "open_read": store.open_read,
        "exists": store.exists,
        "size": store.size,
        "delete": store.delete,
        "list": lambda k: list(store.list(k)),
        "download_prefix": lambda k: store.download_prefix(k, tmp / "download-dir"),
    }
    return calls[method](key)


class ArtifactStoreContract:
    # -- fixtures ------------------------------------------------------------------------------------

    @pytest.fixture
    def outside(self, tmp_path: Path) -> Path:
        """A directory outside the store holding canary files at the traversal corpus's targets."""
        base = tmp_path / "outside"
        for rel in ("etc/passwd", "x", "srv/x", "srv/etc/passwd"):
            (base / rel).parent.mkdir(parents=True, exist_ok=True)
            (base / rel).write_bytes(CANARY)
        return base

    @pytest.fixture
    def local_root(self, outside: Path) -> Path:
        return outside / "srv" / "root"

    @pytest.fixture
    def store(self) -> ArtifactStore:
        raise NotImplementedError("subclasses provide a `store` fixture yielding a fresh, empty store")

    # -- basic semantics -----------------------------------------------------------------------------

    def test_put_get_round_trip(self, store: ArtifactStore) -> None:
        payload = bytes(range(256)) * 17
        store.put_bytes("jobs/tj-1/output/model.bin", payload)
        store.put_bytes("empty", b"")
        assert store.get_bytes("jobs/tj-1/output/model.bin") == payload
        assert store.get_bytes("empty") == b""
        assert store.size("jobs/tj-1/output/model.bin") == len(payload)
        assert store.size("empty") == 0

    def test_overwrite_replaces_whole_object(self, store: ArtifactStore) -> None:
        store.put_bytes("k", b"a much longer first version")
        store.put_bytes("k", b"short")
        assert store.get_bytes("k") == b"short"
        assert store.size("k") == 5
        assert list(store.list("")) == ["k"]

    @pytest.mark.parametrize("method", ["get_bytes", "get_file", "open_read", "size"])
    def test_reading_a_missing_key_is_not_found(self, store: ArtifactStore, method: str, tmp_path: Path) -> None:
        store.put_bytes("present/x", b"1")
        with pytest.raises(NotFound) as err:
            _call(store, method, "present/missing", tmp_path)
        assert err.value.http_status == 404
        assert "present/missing" in err.value.message
        assert not (tmp_path / "download" / "out.bin").exists()

    def test_a_prefix_is_not_an_object(self, store: ArtifactStore) -> None:
        store.put_bytes("dir/file", b"1")
        assert store.exists("dir/file")
        assert not store.exists("dir")
        with pytest.raises(NotFound):
            store.get_bytes("dir")
        with pytest.raises(NotFound):
            store.size("dir")

    def test_exists_and_idempotent_delete(self, store: ArtifactStore) -> None:
        assert not store.exists("a/b")
        store.put_bytes("a/b", b"x")
        assert store.exists("a/b")
        store.delete("a/b")
        assert not store.exists("a/b")
        store.delete("a/b")  # deleting a missing key is not an error
        store.delete("never/existed")
        with pytest.raises(NotFound):
            store.get_bytes("a/b")

    def test_list_is_sorted_and_directory_like(self, store: ArtifactStore) -> None:
        for key in ("b/2", "a/sub/3", "a/1", "ab/4", "c", "a-z/5"):
            store.put_bytes(key, key.encode())
        assert list(store.list("")) == sorted(["a-z/5", "a/1", "a/sub/3", "ab/4", "b/2", "c"])
        assert list(store.list("a")) == ["a/1", "a/sub/3"]
        assert list(store.list("a/")) == ["a/1", "a/sub/3"]
        assert list(store.list("a/sub")) == ["a/sub/3"]
        assert list(store.list("nothing/here")) == []

    def test_put_file_and_get_file_round_trip(self, store: ArtifactStore, tmp_path: Path) -> None:
        src = tmp_path / "in.bin"
        src.write_bytes(b"\x00\x01file contents" * 1000)
        store.put_file("files/in.bin", src)
        dest = tmp_path / "new" / "nested" / "out.bin"
        store.get_file("files/in.bin", dest)
        assert dest.read_bytes() == src.read_bytes()
        assert store.size("files/in.bin") == src.stat().st_size

    def test_open_read_streams(self, store: ArtifactStore) -> None:
        store.put_bytes("s", b"0123456789")
        with store.open_read("s") as fh:
            assert fh.read(4) == b"0123"
            assert fh.read() == b"456789"

    def test_download_prefix_keeps_relative_paths(self, store: ArtifactStore, tmp_path: Path) -> None:
        store.put_bytes("out/model/a.txt", b"a")
        store.put_bytes("out/model/deep/b.txt", b"b")
        store.put_bytes("out/modelx/c.txt", b"c")
        assert store.download_prefix("out/model", tmp_path / "dl") == 2
        assert (tmp_path / "dl" / "a.txt").read_bytes() == b"a"
        assert (tmp_path / "dl" / "deep" / "b.txt").read_bytes() == b"b"
        assert not (tmp_path / "dl" / "c.txt").exists()

    @pytest.mark.parametrize("key", ["a.txt", "jobs/tj-42/output/model.tar.gz", "données/été 1.csv"])
    def test_uri_round_trips(self, store: ArtifactStore, key: str) -> None:
        uri = store.uri(key)
        assert uri.startswith(store.root_uri.rstrip("/") + "/")
        assert store.key_from_uri(uri) == key

    def test_key_from_uri_refuses_uris_outside_the_store(self, store: ArtifactStore) -> None:
        root = store.root_uri.rstrip("/")
        for uri in (
            "file:///etc/passwd",
            "s3://someone-else/key",
            f"{root}-sibling/key",
            f"{root}/../escape",
            f"{root}/a/../../escape",
            root,
            "",
            "relative/key",
        ):
            with pytest.raises(InvalidSpec):
                store.key_from_uri(uri)

    def test_keys_are_unicode_normalised(self, store: ArtifactStore) -> None:
        nfd = unicodedata.normalize("NFD", "café/été.txt")
        nfc = unicodedata.normalize("NFC", "café/été.txt")
        assert nfd != nfc
        store.put_bytes(nfd, b"same object")
        assert store.get_bytes(nfc) == b"same object"
        assert list(store.list("")) == [nfc]

    # -- concurrency ---------------------------------------------------------------------------------

    def test_overwrite_is_atomic_for_concurrent_readers(self, store: ArtifactStore) -> None:
        old, new = b"o" * 300_000, b"N" * 200_000
        store.put_bytes("hot", old)
        stop = threading.Event()
        seen: set[bytes] = set()
        errors: list[BaseException] = []

        def reader() -> None:
            try:
                while not stop.is_set():
                    data = store.get_bytes("hot")
                    seen.add(data[:1] + str(len(data)).encode())
                    assert data in (old, new), "reader saw a half-written object"
            except BaseException as exc:  # reported below: a thread's failure would be lost otherwise
                errors.append(exc)

        threads = [threading.Thread(target=reader) for _ in range(3)]
        for t in threads:
            t.start()
        try:
            for i in range(60):
                store.put_bytes("hot", new if i % 2 == 0 else old)
        finally:
            stop.set()
            for t in threads:
                t.join()
        assert errors == []
        assert seen <= {b"o300000", b"N200000"}
        assert list(store.list("")) == ["hot"]  # no temporary objects left visible

    def test_concurrent_writers_to_distinct_keys(self, store: ArtifactStore) -> None:
        def write(n: int) -> None:
            for i in range(20):
                store.put_bytes(f"w{n}/obj-{i}", f"{n}:{i}".encode())

        threads = [threading.Thread(target=write, args=(n,)) for n in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        keys = list(store.list(""))
        assert len(keys) == 120
        assert store.get_bytes("w3/obj-7") == b"3:7"

    # -- A1: traversal corpus ------------------------------------------------------------------------

    def _assert_refused(
        self, store: ArtifactStore, method: str, bad: object, outside: Path, local_root: Path, tmp: Path
    ) -> None:
        before = _snapshot(outside, local_root)
        assert before, "canary files are missing"
        with pytest.raises(InvalidSpec) as err:
            _call(store, method, bad, tmp)  # type: ignore[arg-type]
        assert err.value.http_status == 400
        assert err.value.details, "InvalidSpec should say which field was bad"
        assert _snapshot(outside, local_root) == before, "a file outside the store root changed"
        assert list(store.list("")) == [], "a refused key must not create anything in the store"
        assert not (tmp / "download" / "out.bin").exists()

    @pytest.mark.parametrize("bad", TRAVERSAL_CORPUS)
    @pytest.mark.parametrize("method", KEY_METHODS + PREFIX_METHODS)
    def test_traversal_corpus_is_refused(
        self, store: ArtifactStore, method: str, bad: object, outside: Path, local_root: Path, tmp_path: Path
    ) -> None:
        self._assert_refused(store, method, bad, outside, local_root, tmp_path)

    @pytest.mark.parametrize("bad", KEY_ONLY_BAD)
    @pytest.mark.parametrize("method", KEY_METHODS)
    def test_non_object_keys_are_refused(
        self, store: ArtifactStore, method: str, bad: object, outside: Path, local_root: Path, tmp_path: Path
    ) -> None:
        if method == "key_from_uri" and bad == "a/":
            pytest.skip("'<root>/a/' is the URI of prefix 'a', which key_from_uri maps back")
        self._assert_refused(store, method, bad, outside, local_root, tmp_path)
