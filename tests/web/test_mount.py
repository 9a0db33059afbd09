"""The console's static files: served at / with a strict CSP, without touching the API's own paths.
Also static checks on the shipped JavaScript: no HTML parsing of data, no eval, no remote assets."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from kamado.web import STATIC_DIR
from kamado.web.mount import render_page, static_digest
from tests.live_server import LiveServer


def test_console_is_served_and_the_api_is_untouched(live: LiveServer) -> None:
    page = httpx.get(live.url + "/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.headers["cache-control"] == "no-cache"
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe" not in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    main = re.search(r'<script type="module" src="(/console/[0-9a-f]{16}/js/main\.js)">', page.text)
    assert main, page.text
    base = main.group(1).removesuffix("/js/main.js")
    preloaded = set(re.findall(r'<link rel="modulepreload" href="([^"]+)">', page.text))
    assert {f"{base}/js/{p.relative_to(STATIC_DIR / 'js').as_posix()}" for p in _scripts()} == preloaded
    js = httpx.get(live.url + main.group(1))
    assert js.status_code == 200 and "javascript" in js.headers["content-type"]
    assert js.headers["content-security-policy"] == csp and "immutable" in js.headers["cache-control"]
    assert httpx.get(f"{live.url}{base}/js/nope.js").status_code == 404
    assert httpx.get(f"{live.url}{base}/../../pyproject.toml").status_code == 404
    assert httpx.get(f"{live.url}/console/0000000000000000/js/main.js").status_code == 404  # an old digest
    unknown = httpx.get(live.url + "/api/v1/no-such-route")
    assert unknown.status_code == 404 and unknown.headers["content-type"].startswith("application/")
    assert unknown.json()
    assert httpx.get(live.url + "/healthz").json() == {"status": "ok"}
    assert httpx.get(live.url + "/api/v1/training-jobs").json()["TrainingJobSummaries"] == []
    paths = httpx.get(live.url + "/api/v1/openapi.json").json()["paths"]
    assert "/" not in paths and all(p.startswith("/api/v1/") or p == "/healthz" for p in paths)


def test_the_asset_digest_follows_the_content(tmp_path: Path) -> None:
    (tmp_path / "js").mkdir()
    (tmp_path / "index.html").write_text('<head><script type="module" src="/console/js/main.js"></script></head>')
    (tmp_path / "js" / "main.js").write_text("export const a = 1;")
    before = static_digest(tmp_path)
    page = render_page("/console/abc", tmp_path)
    assert (
        'src="/console/abc/js/main.js"' in page and '<link rel="modulepreload" href="/console/abc/js/main.js">' in page
    )
    (tmp_path / "js" / "main.js").write_text("export const a = 2;")
    assert static_digest(tmp_path) != before


def _scripts() -> list[Path]:
    return sorted(STATIC_DIR.rglob("*.js"))


def test_no_script_parses_data_as_html_or_code() -> None:
    banned = re.compile(r"\.innerHTML|\.outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function\(")
    offenders = [
        f"{p.name}:{n}"
        for p in _scripts()
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if banned.search(line) and not line.lstrip().startswith(("//", "*", "/*"))
    ]
    assert len(_scripts()) >= 10 and not offenders, offenders


def test_every_asset_is_local() -> None:
    remote = re.compile(r"""(src|href)\s*=\s*["']?(https?:)?//|import\s.*["']https?://|url\(\s*["']?https?://""")
    files = [*_scripts(), STATIC_DIR / "index.html", STATIC_DIR / "app.css"]
    offenders = [p.name for p in files if remote.search(p.read_text())]
    assert not offenders, offenders
