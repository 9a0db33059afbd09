"""Open an artifact store by URL: the plugin table (CONVENTIONS 9).

Built-ins live in :data:`BACKENDS`, keyed by URL scheme; a third party registers a backend under the
``kamado.artifact_stores`` entry-point group with the scheme as the name and, as the value, a callable
``(url: str) -> ArtifactStore``. Backends are imported lazily so that opening a local store never imports
an object-store client.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path
from typing import cast
from urllib.parse import unquote, urlsplit

from kamado.artifacts.base import ArtifactStore
from kamado.core.errors import InvalidSpec

ENTRY_POINT_GROUP = "kamado.artifact_stores"

Opener = Callable[[str], ArtifactStore]


def _open_local(url: str) -> ArtifactStore:
    from kamado.artifacts.local import LocalArtifactStore

    if url.startswith("file:"):
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost") or parts.query or parts.fragment:
            raise InvalidSpec(
                f"Artifact store URL {url!r} must name a local absolute path, e.g. file:///srv/kamado/artifacts.",
                details=[{"field": "artifact_store_url", "message": "file URL with a host, query or fragment"}],
            )
        path = unquote(parts.path)
        if not path.startswith("/"):
            raise InvalidSpec(
                f"Artifact store URL {url!r} must name an absolute path, e.g. file:///srv/kamado/artifacts.",
                details=[{"field": "artifact_store_url", "message": "relative file URL"}],
            )
        return LocalArtifactStore(Path(path))
    return LocalArtifactStore(Path(url).expanduser().absolute())


def _open_s3(url: str) -> ArtifactStore:
    try:
        from kamado.artifacts.s3 import S3ArtifactStore

        return S3ArtifactStore.from_url(url)  # imports s3fs lazily, on the first s3:// URL
    except ImportError as exc:  # s3fs (or botocore) missing: say which extra brings it
        raise InvalidSpec(
            f"S3 artifact stores need the s3 extra ({exc.name or 's3fs'} is not installed); "
            "run `pip install 'kamado[s3]'` on the server, or use a local path or file:// URL.",
            details=[{"field": "artifact_store_url", "message": "s3fs is not installed"}],
        ) from None


#: Built-in backends by URL scheme; '' is a plain filesystem path.
BACKENDS: dict[str, Opener] = {
    "": _open_local,
    "file": _open_local,
    "s3": _open_s3,
}


def _scheme(url: str) -> str:
    head, sep, _ = url.partition("://")
    if sep and head.isascii() and head.replace("+", "").replace("-", "").replace(".", "").isalnum():
        return head.lower()
    if url.startswith("file:"):
        return "file"
    return ""


def _plugin(scheme: str) -> Opener | None:
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == scheme:
            return cast(Opener, ep.load())
    return None


def open_artifact_store(url: str) -> ArtifactStore:
    """The artifact store that ``url`` names: a plain path, ``file:///abs/path`` or ``<scheme>://...``."""
    if not isinstance(url, str) or not url.strip():
        raise InvalidSpec(
            "An artifact store URL is required, e.g. ~/.kamado/artifacts or file:///srv/kamado/artifacts.",
            details=[{"field": "artifact_store_url", "message": "empty"}],
        )
    scheme = _scheme(url)
    opener = BACKENDS.get(scheme) or _plugin(scheme)
    if opener is None:
        known = ", ".join(sorted(f"{s}://" for s in BACKENDS if s))
        raise InvalidSpec(
            f"No artifact store backend handles {scheme}:// URLs (in {url!r}); use a local path or one of "
            f"{known}, or install a plugin that registers '{scheme}' under '{ENTRY_POINT_GROUP}'.",
            details=[{"field": "artifact_store_url", "message": f"unknown scheme {scheme!r}"}],
        )
    return opener(url)
