"""Artifact store (blobs on fsspec: local directory by default, S3-compatible later)."""
