"""Uploads of content-addressed trees (source code, local data) and downloads of artifacts."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from kamado.api.platform import Platform
from kamado.artifacts import trees
from kamado.artifacts.hashing import validate_digest
from kamado.core.errors import InvalidSpec, NotFound

router = APIRouter(tags=["artifacts"])


def _platform(request: Request) -> Platform:
    return request.app.state.platform


@router.get("/trees/{digest}")
def get_tree(request: Request, digest: str) -> dict[str, Any]:
    """The manifest of an uploaded tree, or 404: clients ask before uploading, so nothing is sent twice."""
    platform = _platform(request)
    validate_digest(digest)
    if not trees.tree_exists(platform.artifacts, digest):
        raise NotFound(f"No uploaded tree with digest {digest}; upload it with PUT.")
    manifest = trees.load_tree_manifest(platform.artifacts, digest)
    return {
        "Digest": digest,
        "Uri": trees.tree_uri(platform.artifacts, digest),
        "Files": len(manifest.files),
        "TotalBytes": manifest.total_bytes,
    }


@router.put("/trees/{digest}", status_code=201)
async def put_tree(request: Request, digest: str) -> dict[str, Any]:
    """Upload a directory as a ``.tar.gz`` whose content hashes to ``digest``. Extracted with strict
    limits (no links, no escaping paths, size and entry caps) and verified before it becomes visible."""
    platform = _platform(request)
    validate_digest(digest)
    if trees.tree_exists(platform.artifacts, digest):
        return {"Digest": digest, "Uri": trees.tree_uri(platform.artifacts, digest), "Created": False}
    tmp_dir = platform.settings.home / "tmp"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=tmp_dir, suffix=".tar.gz")
    try:
        with os.fdopen(fd, "wb") as f:
            async for chunk in request.stream():
                f.write(chunk)
        if os.path.getsize(tmp_name) == 0:
            raise InvalidSpec("The upload body is empty; send the directory as a .tar.gz.", details=[{"field": "body"}])
        await run_in_threadpool(trees.store_tree_from_archive, platform.artifacts, Path(tmp_name), digest)
    finally:
        Path(tmp_name).unlink(missing_ok=True)
    return {"Digest": digest, "Uri": trees.tree_uri(platform.artifacts, digest), "Created": True}


@router.get("/artifacts/content")
def download_artifact(request: Request, uri: str) -> StreamingResponse:
    """Stream one object of the artifact store (a model.tar.gz, say) by its URI."""
    platform = _platform(request)
    key = platform.artifacts.key_from_uri(uri)
    if not platform.artifacts.exists(key):
        raise NotFound(f"No artifact at {uri!r}.")
    size = platform.artifacts.size(key)

    def body() -> Iterator[bytes]:
        with platform.artifacts.open_read(key) as f:
            while chunk := f.read(1 << 20):
                yield chunk

    return StreamingResponse(body(), media_type="application/octet-stream", headers={"Content-Length": str(size)})
