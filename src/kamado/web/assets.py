"""The console's scripts and stylesheet, held in memory (and gzipped) and answered on the event loop.

Why not Starlette's ``StaticFiles``: it stats, opens and reads each file in the thread pool, and a first visit
asks for fifteen of them at once. On a server whose thread pool and GIL are busy (reconcilers walking a large
store, other API calls), each of those hops waited its turn: a first visit spent most of its time fetching
assets that never change while the server runs. The files are a few hundred kilobytes; reading them once at
startup and answering from a dict costs no thread, no system call and no lock per request. Compressing them
once makes a first visit over a real network cheaper too.
"""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
from dataclasses import dataclass
from pathlib import Path

from starlette.types import Receive, Scope, Send

#: Smaller files gain nothing from compression worth a ``Vary`` header and a decompression step.
MIN_GZIP_BYTES = 512
_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
}


@dataclass(frozen=True)
class Asset:
    body: bytes
    gzipped: bytes | None
    content_type: str
    etag: bytes


def load_assets(root: Path) -> dict[str, Asset]:
    """Every file under ``root``, keyed by its path relative to ``root`` with a leading slash."""
    assets: dict[str, Asset] = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        body = path.read_bytes()
        packed = gzip.compress(body, compresslevel=9, mtime=0) if len(body) >= MIN_GZIP_BYTES else None
        ctype = _TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        etag = f'"{hashlib.sha256(body).hexdigest()[:16]}"'.encode()
        assets["/" + path.relative_to(root).as_posix()] = Asset(
            body, packed if packed and len(packed) < len(body) else None, ctype, etag
        )
    return assets


def _accepts_gzip(scope: Scope) -> bool:
    for key, value in scope["headers"]:
        if key == b"accept-encoding":
            return b"gzip" in value
    return False


def _if_none_match(scope: Scope) -> bytes | None:
    for key, value in scope["headers"]:
        if key == b"if-none-match":
            return bytes(value)
    return None


class MemoryAssets:
    """An ASGI app answering GET and HEAD for the files of :func:`load_assets`, with ``headers`` added."""

    def __init__(self, assets: dict[str, Asset], headers: dict[str, str]) -> None:
        self.assets = assets
        self.headers = [(k.lower().encode(), v.encode()) for k, v in headers.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        method = scope["method"]
        path, root = scope["path"], scope.get("root_path", "")
        asset = self.assets.get(path[len(root) :] if root and path.startswith(root) else path)
        if method not in ("GET", "HEAD"):
            await self._plain(send, 405, b"Method Not Allowed", ((b"allow", b"GET, HEAD"),))
            return
        if asset is None:
            await self._plain(send, 404, b"Not Found")
            return
        headers = [*self.headers, (b"content-type", asset.content_type.encode()), (b"etag", asset.etag)]
        if asset.gzipped is not None:
            headers.append((b"vary", b"Accept-Encoding"))
        if _if_none_match(scope) == asset.etag:
            await send({"type": "http.response.start", "status": 304, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        body = asset.body
        if asset.gzipped is not None and _accepts_gzip(scope):
            body = asset.gzipped
            headers.append((b"content-encoding", b"gzip"))
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if method == "HEAD" else body})

    async def _plain(self, send: Send, status: int, text: bytes, extra: tuple[tuple[bytes, bytes], ...] = ()) -> None:
        headers = [*self.headers, (b"content-type", b"text/plain; charset=utf-8"), *extra]
        headers.append((b"content-length", str(len(text)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": text})
