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
``frame-ancestors 'none'`` stops click-jacking.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

STATIC_DIR = Path(__file__).parent / "static"
ASSET_PREFIX = "/console"

CONSOLE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
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


class _Headers:
    """Adds the console's security headers and a cache policy to every response of the app it wraps."""

    def __init__(self, app: ASGIApp, cache_control: str) -> None:
        self.app = app
        self.extra = [
            (k.lower().encode(), v.encode()) for k, v in {**CONSOLE_HEADERS, "Cache-Control": cache_control}.items()
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *self.extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def mount_console(app: FastAPI) -> str:
    """Serve the console at ``/`` and its assets at ``/console/<digest>/``; returns that asset base.

    Only these paths are claimed: ``/api/v1/*`` and ``/healthz`` are untouched, and an unknown ``/api/...``
    path still gets the API's JSON 404. The digest is taken once, at startup.
    """
    base = f"{ASSET_PREFIX}/{static_digest()}"
    page = render_page(base)

    @app.get("/", include_in_schema=False)
    def console_page() -> HTMLResponse:
        return HTMLResponse(page, headers={**CONSOLE_HEADERS, "Cache-Control": "no-cache"})

    app.mount(base, _Headers(StaticFiles(directory=STATIC_DIR), IMMUTABLE), name="console")
    return base
