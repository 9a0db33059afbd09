"""A real S3-compatible server on loopback for tests: moto in server mode (HTTP, not in-process mocks).

The fixtures skip with a reason only when moto or s3fs cannot be imported; CI installs both (dev extra).
Credentials are fake but real in shape: the server only checks them once a test turns auth on
(:func:`enforce_auth`), which is how the bad-credential tests get genuine InvalidAccessKeyId and
AccessDenied answers over HTTP.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

FAKE_ENV = {
    "AWS_ACCESS_KEY_ID": "kamado-test-key",
    "AWS_SECRET_ACCESS_KEY": "kamado-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}
BUCKET = "kamado-test"


@dataclass
class S3Server:
    endpoint: str
    bucket: str

    def client(self, **creds: str) -> Any:
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1", **creds)

    def new_prefix(self) -> str:
        return f"t-{secrets.token_hex(6)}"

    def url(self, prefix: str, *, query: bool = True) -> str:
        base = f"s3://{self.bucket}/{prefix}"
        return f"{base}?endpoint_url={self.endpoint}" if query else base


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    try:
        import s3fs  # noqa: F401
        from moto.server import ThreadedMotoServer
    except ImportError as exc:
        pytest.skip(f"moto[server] and s3fs are needed for the S3 tests ({exc.name} is not installed)")
    saved = {k: os.environ.get(k) for k in FAKE_ENV}
    os.environ.update(FAKE_ENV)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=_free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    s3 = S3Server(endpoint=f"http://{host}:{port}", bucket=BUCKET)
    s3.client().create_bucket(Bucket=BUCKET)
    try:
        yield s3
    finally:
        server.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def enforce_auth(s3: S3Server, unauthenticated_actions: int = 0) -> Iterator[None]:
    """Make the server check credentials (after ``unauthenticated_actions`` free requests), then stop."""
    httpx.post(f"{s3.endpoint}/moto-api/reset-auth", content=str(unauthenticated_actions)).raise_for_status()
    try:
        yield
    finally:
        httpx.post(f"{s3.endpoint}/moto-api/reset-auth", content="inf").raise_for_status()
