"""S3ArtifactStore against a real S3-compatible server (moto, server mode): the shared contract."""

from __future__ import annotations

import pytest

from kamado.artifacts.s3 import S3ArtifactStore
from kamado.testing.artifact_contract import ArtifactStoreContract
from tests.scaleout.s3server import S3Server, s3_server  # noqa: F401  (session fixture)


class TestS3ArtifactStore(ArtifactStoreContract):
    @pytest.fixture
    def store(self, s3_server: S3Server) -> S3ArtifactStore:  # noqa: F811
        # A fresh, empty store per test: a new prefix in the shared bucket.
        return S3ArtifactStore(s3_server.bucket, s3_server.new_prefix(), endpoint_url=s3_server.endpoint)
