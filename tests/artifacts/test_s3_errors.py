"""What only the S3 backend can get wrong: URLs and endpoints, credentials, buckets, prefixes, multipart.

Every test talks HTTP to a real S3-compatible server (moto in server mode on loopback).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from kamado.artifacts.factory import open_artifact_store
from kamado.artifacts.s3 import ENDPOINT_ENV, S3ArtifactStore
from kamado.core.errors import InvalidSpec, NotFound, ServiceUnavailable
from tests.scaleout.s3server import FAKE_ENV, S3Server, enforce_auth, s3_server  # noqa: F401

pytestmark = pytest.mark.usefixtures("s3_server")


def _dead_endpoint() -> str:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"  # closed again: connections are refused


def _fresh_clients() -> None:
    """Credentials are read when a client is made; forget cached ones after changing the environment."""
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()


# -- endpoint and URL ----------------------------------------------------------------------------------


def test_endpoint_from_the_url_query(s3_server: S3Server) -> None:  # noqa: F811
    prefix = s3_server.new_prefix()
    store = open_artifact_store(s3_server.url(prefix))
    assert isinstance(store, S3ArtifactStore)
    assert store.root_uri == f"s3://{s3_server.bucket}/{prefix}"  # the endpoint is not part of public URIs
    store.put_bytes("jobs/tj-1/model.tar.gz", b"weights")
    body = s3_server.client().get_object(Bucket=s3_server.bucket, Key=f"{prefix}/jobs/tj-1/model.tar.gz")["Body"]
    assert body.read() == b"weights"
    assert store.uri("jobs/tj-1/model.tar.gz") == f"s3://{s3_server.bucket}/{prefix}/jobs/tj-1/model.tar.gz"


def test_endpoint_from_the_environment(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    monkeypatch.setenv(ENDPOINT_ENV, s3_server.endpoint)
    store = open_artifact_store(s3_server.url(s3_server.new_prefix(), query=False))
    assert isinstance(store, S3ArtifactStore)
    assert store.endpoint_url == s3_server.endpoint
    store.put_bytes("k", b"v")
    assert store.get_bytes("k") == b"v"


def test_the_url_query_wins_over_the_environment(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    monkeypatch.setenv(ENDPOINT_ENV, _dead_endpoint())
    store = open_artifact_store(s3_server.url(s3_server.new_prefix()))
    store.put_bytes("k", b"v")
    assert store.get_bytes("k") == b"v"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("s3://AKIAXXXX:topsecret@bucket/p", "credentials in the URL"),
        ("s3://bucket/p?endpoint=http://x", "unknown query parameter"),
        ("s3://Bad_Bucket/p", "bucket name"),
        ("s3://bucket/p?endpoint_url=ftp://host", "http:// or https://"),
        ("s3://bucket/p?endpoint_url=http://me:pw@host:9000", "must not carry credentials"),
        ("s3://bucket/../escape", "not a valid artifact key"),
        ("s3://bucket/p#frag", "fragment"),
    ],
)
def test_bad_urls_are_refused_without_echoing_secrets(url: str, reason: str) -> None:
    with pytest.raises(InvalidSpec) as err:
        open_artifact_store(url)
    assert reason in err.value.message
    assert err.value.http_status == 400
    assert "topsecret" not in err.value.message and "pw@" not in err.value.message


# -- clear errors ---------------------------------------------------------------------------------------


def test_missing_bucket_is_a_clear_error(s3_server: S3Server) -> None:  # noqa: F811
    store = S3ArtifactStore("no-such-bucket-here", "p", endpoint_url=s3_server.endpoint)
    for call in (lambda: store.put_bytes("k", b"v"), lambda: store.get_bytes("k"), lambda: list(store.list(""))):
        with pytest.raises(ServiceUnavailable) as err:
            call()
        assert "'no-such-bucket-here' does not exist" in err.value.message
        assert "create it" in err.value.message
        assert err.value.details == {"reason": "NoSuchBucket", "bucket": "no-such-bucket-here"}


def test_unknown_access_key_is_a_clear_error(s3_server: S3Server) -> None:  # noqa: F811
    store = S3ArtifactStore(s3_server.bucket, s3_server.new_prefix(), endpoint_url=s3_server.endpoint)
    with enforce_auth(s3_server), pytest.raises(ServiceUnavailable) as err:
        store.put_bytes("k", b"v")
    assert "InvalidAccessKeyId" in err.value.message
    assert "AWS_ACCESS_KEY_ID" in err.value.message
    assert FAKE_ENV["AWS_SECRET_ACCESS_KEY"] not in err.value.message
    assert FAKE_ENV["AWS_SECRET_ACCESS_KEY"] not in str(err.value.details)


def test_credentials_without_permission_are_a_clear_error(
    s3_server: S3Server,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import boto3

    iam = boto3.client("iam", endpoint_url=s3_server.endpoint, region_name="us-east-1")
    with enforce_auth(s3_server, unauthenticated_actions=2):
        iam.create_user(UserName="no-rights")
        key = iam.create_access_key(UserName="no-rights")["AccessKey"]
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
        _fresh_clients()
        try:
            store = S3ArtifactStore(s3_server.bucket, s3_server.new_prefix(), endpoint_url=s3_server.endpoint)
            with pytest.raises(ServiceUnavailable) as err:
                store.put_bytes("k", b"v")
        finally:
            _fresh_clients()
    assert "AccessDenied" in err.value.message
    assert "s3:PutObject" in err.value.message
    assert key["SecretAccessKey"] not in err.value.message


def test_unreachable_endpoint_is_a_clear_error_and_fails_fast() -> None:
    dead = _dead_endpoint()
    store = open_artifact_store(f"s3://some-bucket/p?endpoint_url={dead}")
    started = time.monotonic()
    with pytest.raises(ServiceUnavailable) as err:
        store.get_bytes("k")
    assert time.monotonic() - started < 30
    assert "cannot be reached" in err.value.message
    assert dead in err.value.message
    assert err.value.details == {"reason": "EndpointUnreachable", "bucket": "some-bucket"}


# -- the prefix is a wall -------------------------------------------------------------------------------


def test_keys_cannot_escape_the_prefix(s3_server: S3Server) -> None:  # noqa: F811
    prefix = s3_server.new_prefix()
    raw = s3_server.client()
    for name in (f"{prefix}-sibling/secret", "outside/secret", f"{prefix}/inside"):
        raw.put_object(Bucket=s3_server.bucket, Key=name, Body=b"x")
    store = S3ArtifactStore(s3_server.bucket, prefix, endpoint_url=s3_server.endpoint)
    assert list(store.list("")) == ["inside"]
    for bad in ("../outside/secret", f"../{prefix}-sibling/secret", "/outside/secret", "..%2foutside%2fsecret"):
        with pytest.raises(InvalidSpec):
            store.get_bytes(bad)
        with pytest.raises(InvalidSpec):
            store.delete(bad)
    with pytest.raises(InvalidSpec):
        store.key_from_uri(f"s3://{s3_server.bucket}/{prefix}-sibling/secret")
    with pytest.raises(InvalidSpec):
        store.key_from_uri(f"s3://{s3_server.bucket}/outside/secret")
    names = sorted(o["Key"] for o in raw.list_objects_v2(Bucket=s3_server.bucket, Prefix="outside")["Contents"])
    assert names == ["outside/secret"]  # nothing outside the prefix was deleted


def test_a_missing_key_is_not_found_once_the_bucket_is_known(s3_server: S3Server) -> None:  # noqa: F811
    store = S3ArtifactStore(s3_server.bucket, s3_server.new_prefix(), endpoint_url=s3_server.endpoint)
    with pytest.raises(NotFound):
        store.size("nope")
    assert not store.exists("nope")


# -- multipart ------------------------------------------------------------------------------------------


def test_large_files_go_up_as_multipart(s3_server: S3Server, tmp_path: Path) -> None:  # noqa: F811
    chunk = 5 * 1024 * 1024  # S3's smallest part
    store = S3ArtifactStore(
        s3_server.bucket, s3_server.new_prefix(), endpoint_url=s3_server.endpoint, multipart_chunk_bytes=chunk
    )
    big = tmp_path / "big.bin"
    payload = bytes(range(256)) * (11 * 1024 * 1024 // 256)  # 11 MiB: three parts
    big.write_bytes(payload)
    store.put_file("model/big.bin", big)
    assert store.etag("model/big.bin").endswith("-3"), "expected a 3-part multipart upload"
    assert store.size("model/big.bin") == len(payload)
    store.get_file("model/big.bin", tmp_path / "back.bin")
    assert (tmp_path / "back.bin").read_bytes() == payload
    store.put_bytes("model/small.bin", b"tiny")
    assert "-" not in store.etag("model/small.bin")


def test_put_file_of_a_missing_local_file_is_refused(s3_server: S3Server, tmp_path: Path) -> None:  # noqa: F811
    store = S3ArtifactStore(s3_server.bucket, s3_server.new_prefix(), endpoint_url=s3_server.endpoint)
    with pytest.raises(InvalidSpec, match="does not exist"):
        store.put_file("k", tmp_path / "nope.bin")


# -- stays light ----------------------------------------------------------------------------------------


def test_opening_a_local_store_does_not_import_s3fs(tmp_path: Path) -> None:
    code = (
        "import sys, kamado, kamado.artifacts as a; a.open_artifact_store(sys.argv[1]); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('s3fs', 'botocore', 'aiobotocore')))"
    )
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "a")], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
