"""Mount the console's static files on the FastAPI app: ``/`` serves the page, ``/console/<digest>/*`` its
scripts and styles.

Why a content digest in the asset URLs: the page is a dozen ES modules. Under a digest that changes with
their content, they can be cached for good (``immutable``), so a returning user's browser asks the server
for nothing but the page and the API calls, and an upgrade can never mix old and new modules. The page
itself is never cached, and lists every module as ``modulepreload`` so a first visit fetches them all at
once instead of discovering the import graph one level at a time.

Why a strict Content-Security-Policy: the console renders names, tags, hyperparameters and log lines that
users control. It builds the DOM with ``textContent`` only, and the policy (no inline script, no ``eval``,
connections to this origin only) is a second wall should a mistake ever slip in. No cookies are used (the
token lives in ``sessionStorage`` and travels as a Bearer header), so there is no CSRF surface;
``frame-ancestors 'none'`` stops click-jacking. The one origin besides this one that scripts may call is the
inference router's (the endpoint page's test-invoke box), named per page load because the router may start
or move while the server runs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from fastapi import FastAPI
from fastapi.responses import HTMLResponse

from kamado.web.assets import MemoryAssets, load_assets

STATIC_DIR = Path(__file__).parent / "static"
ASSET_PREFIX = "/console"


def content_security_policy(connect: tuple[str, ...] = ()) -> str:
    """The console's policy; ``connect`` are further origins its scripts may call (the inference router, for
    the endpoint page's test-invoke box)."""
    sources = " ".join(("'self'", *connect))
    return (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"connect-src {sources}; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )


CONSOLE_HEADERS = {
    "Content-Security-Policy": content_security_policy(),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
IMMUTABLE = "public, max-age=31536000, immutable"


def static_digest(root: Path = STATIC_DIR) -> str:
    """A short hash of every static file's path and bytes: the assets' cache key."""
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def render_page(base: str, root: Path = STATIC_DIR) -> str:
    """index.html with its asset URLs under ``base`` and a modulepreload link for every module. Only file
    names from the package go into the page: no request data is ever rendered here."""
    html = (root / "index.html").read_text().replace(f'"{ASSET_PREFIX}/', f'"{base}/')
    modules = sorted(p.relative_to(root).as_posix() for p in (root / "js").rglob("*.js"))
    preload = "".join(f'  <link rel="modulepreload" href="{base}/{m}">\n' for m in modules)
    return html.replace("</head>", preload + "</head>", 1)


def _origin(url: str | None) -> tuple[str, ...]:
    """``scheme://host:port`` of ``url`` for a CSP source list; nothing for anything else. Only a URL the
    server itself produced (its router's address) ever comes here, never request data."""
    if not url:
        return ()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or any(c in parts.netloc for c in " ;,'\""):
        return ()
    return (f"{parts.scheme}://{parts.netloc}",)


def mount_console(app: FastAPI, *, connect_to: Callable[[], str | None] | None = None) -> str:
    """Serve the console at ``/`` and its assets at ``/console/<digest>/``; returns that asset base.

    Only these paths are claimed: ``/api/v1/*`` and ``/healthz`` are untouched, and an unknown ``/api/...``
    path still gets the API's JSON 404. The digest and the assets are taken once, at startup.
    ``connect_to`` returns the inference router's URL, or None while none runs: the page's policy lets its
    scripts call that origin (the endpoint page's test-invoke box). It is asked on every page load, since
    the router may start, or move to another port, while the server runs.
    """
    base = f"{ASSET_PREFIX}/{static_digest()}"
    page = render_page(base)

    @app.get("/", include_in_schema=False)
    async def console_page() -> HTMLResponse:  # async: nothing blocks here, so no thread-pool hop
        headers = {**CONSOLE_HEADERS, "Cache-Control": "no-cache"}
        if connect_to is not None:
            headers["Content-Security-Policy"] = content_security_policy(_origin(connect_to()))
        return HTMLResponse(page, headers=headers)

    app.mount(
        base, MemoryAssets(load_assets(STATIC_DIR), {**CONSOLE_HEADERS, "Cache-Control": IMMUTABLE}), name="console"
    )
    return base
