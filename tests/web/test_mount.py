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


def test_assets_come_gzipped_with_an_etag_from_memory(live: LiveServer) -> None:
    page = httpx.get(live.url + "/").text
    main = re.search(r'src="(/console/[0-9a-f]{16}/js/main\.js)"', page)
    assert main
    base = main.group(1).removesuffix("/js/main.js")
    plain = httpx.get(f"{live.url}{base}/js/charts.js", headers={"Accept-Encoding": "identity"})
    assert plain.status_code == 200 and "content-encoding" not in plain.headers
    assert plain.content == (STATIC_DIR / "js" / "charts.js").read_bytes()
    packed = httpx.get(f"{live.url}{base}/js/charts.js", headers={"Accept-Encoding": "gzip"})
    assert packed.headers["content-encoding"] == "gzip" and packed.headers["vary"] == "Accept-Encoding"
    assert int(packed.headers["content-length"]) < len(plain.content) / 2
    assert packed.content == plain.content  # httpx decompressed it: the same bytes
    assert packed.headers["content-type"].startswith("text/javascript")
    assert httpx.get(f"{live.url}{base}/app.css").headers["content-type"].startswith("text/css")
    etag = plain.headers["etag"]
    again = httpx.get(f"{live.url}{base}/js/charts.js", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    head = httpx.head(f"{live.url}{base}/js/charts.js")
    assert head.status_code == 200 and head.content == b"" and int(head.headers["content-length"]) > 0
    assert httpx.post(f"{live.url}{base}/js/charts.js").status_code == 405
    assert "immutable" in head.headers["cache-control"] and "content-security-policy" in head.headers


def test_the_page_may_call_the_router_once_one_runs(live: LiveServer) -> None:
    before = httpx.get(live.url + "/").headers["content-security-policy"]
    assert "connect-src 'self';" in before  # no router yet: this origin only
    router = httpx.get(live.url + "/api/v1/runtime").json()["Url"]  # starts the router
    after = httpx.get(live.url + "/").headers["content-security-policy"]
    assert f"connect-src 'self' {router.rstrip('/')};" in after
    assert after.replace(f" {router.rstrip('/')}", "") == before  # nothing else loosened
