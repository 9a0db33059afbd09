"""Artifact store (blobs on fsspec: local directory by default, S3-compatible later).

Open one with :func:`open_artifact_store`; every key passes :func:`validate_key` before any I/O (A1).
Source code and local data go up as content-addressed trees (:mod:`kamado.artifacts.trees`), and uploaded
archives are unpacked only through :func:`kamado.artifacts.archives.extract_archive` (A2).
"""

from kamado.artifacts.base import ArtifactStore
from kamado.artifacts.factory import open_artifact_store
from kamado.artifacts.keys import validate_key, validate_prefix
from kamado.artifacts.local import LocalArtifactStore
from kamado.artifacts.trees import TreeFile, TreeManifest

__all__ = [
    "ArtifactStore",
    "LocalArtifactStore",
    "TreeFile",
    "TreeManifest",
    "open_artifact_store",
    "validate_key",
    "validate_prefix",
]
