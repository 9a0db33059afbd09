"""The artifact store on S3-compatible object storage (AWS S3, MinIO, Ceph RGW, ...), through s3fs.

Why S3: when the server, its workers and several control-plane replicas run on different machines,
a local directory is no longer shared; an object store is. Open one with ``s3://bucket/prefix``.

* **Endpoint.** ``?endpoint_url=http://127.0.0.1:9000`` in the URL wins; otherwise
  ``KAMADO_S3_ENDPOINT_URL``; otherwise botocore's default (AWS, or ``AWS_ENDPOINT_URL_S3``).
  ``?region=`` (or ``AWS_DEFAULT_REGION``) picks the signing region.
* **Credentials** come only from the standard AWS chain (``AWS_ACCESS_KEY_ID`` /
  ``AWS_SECRET_ACCESS_KEY`` / ``AWS_SESSION_TOKEN``, ``AWS_PROFILE``, instance roles). A URL carrying
  credentials (``s3://key:secret@bucket``) is refused, and no message ever repeats a secret.
* **Keys** pass :func:`~kamado.artifacts.keys.validate_key` before any request (A1), and the object
  name is always ``<prefix>/<key>``, so nothing outside the prefix can be read, written or listed.
* **Atomicity.** An S3 PUT (single or completed multipart) replaces the whole object at once, so no
  temporary names are needed; streaming reads pin the object's ETag (``If-Match``), so a reader never
  mixes two versions.
* **Errors.** A missing bucket, refused credentials and an unreachable endpoint become
  :class:`~kamado.core.errors.ServiceUnavailable` with a message that says which and what to check; a
  missing key is :class:`~kamado.core.errors.NotFound`, as for every store.

s3fs (and through it botocore) is imported here only, and this module only when an ``s3://`` URL is
opened, so ``import kamado`` stays light.
"""

from __future__ import annotations

import os
import re
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, cast
from urllib.parse import parse_qs, urlsplit

from kamado.artifacts.base import ArtifactStore
from kamado.artifacts.keys import validate_key, validate_prefix
from kamado.core.errors import InvalidSpec, KamadoError, NotFound, ServiceUnavailable

ENDPOINT_ENV = "KAMADO_S3_ENDPOINT_URL"
#: Files and payloads at least twice this size go up as a multipart upload of parts this large.
DEFAULT_MULTIPART_CHUNK = 50 * 1024 * 1024
_QUERY_KEYS = ("endpoint_url", "region")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_UNREACHABLE = (
    "EndpointConnectionError",
    "ConnectTimeoutError",
    "ConnectionClosedError",
    "ClientConnectorError",
    "ServerDisconnectedError",
    "ConnectionRefusedError",
    "ReadTimeoutError",
    "gaierror",
)
_CREDENTIAL_CODES = {
    "InvalidAccessKeyId": "the access key id is not known to the server",
    "SignatureDoesNotMatch": "the secret access key does not match the access key id",
    "ExpiredToken": "the session token has expired",
    "InvalidToken": "the session token is not valid",
    "AccessDenied": "the credentials are valid but not allowed to do this",
    "AllAccessDisabled": "all access to the bucket is disabled",
    "403": "the server refused the request (HTTP 403)",
}
_CREDENTIALS_HINT = (
    "check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) in the server's environment and that "
    "the bucket policy allows s3:ListBucket, s3:GetObject, s3:PutObject and s3:DeleteObject on it"
)


def _bad_url(url: str, reason: str) -> InvalidSpec:
    shown = _redact(url)
    return InvalidSpec(
        f"Artifact store URL {shown!r} is not usable: {reason}. Use s3://bucket/prefix, optionally with "
        f"?endpoint_url=http://host:9000 (or set {ENDPOINT_ENV}); credentials come from the AWS variables.",
        details=[{"field": "artifact_store_url", "message": reason}],
    )


def _redact(url: str) -> str:
    """The URL without anything that could be a credential (user info) and without control characters."""
    head, sep, rest = url.partition("://")
    if sep and "@" in rest.split("/", 1)[0]:
        rest = "***@" + rest.split("@", 1)[1]
    return ascii(head + sep + rest)[1:-1][:200]


def _check_endpoint(endpoint: str, source: str) -> str:
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidSpec(
            f"The S3 endpoint from {source} must be an http:// or https:// URL with a host, e.g. "
            "http://127.0.0.1:9000 for MinIO.",
            details=[{"field": "endpoint_url", "message": "not an http(s) URL with a host"}],
        )
    if parts.username or parts.password:
        raise InvalidSpec(
            f"The S3 endpoint from {source} must not carry credentials; set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) instead.",
            details=[{"field": "endpoint_url", "message": "credentials in the URL"}],
        )
    return endpoint.rstrip("/")


def parse_s3_url(url: str) -> dict[str, str | None]:
    """``s3://bucket/prefix?endpoint_url=...&region=...`` → bucket, prefix, endpoint_url, region."""
    if any(not ch.isprintable() for ch in url):
        raise _bad_url(url, "it contains control characters")
    parts = urlsplit(url)
    if parts.scheme.lower() != "s3":
        raise _bad_url(url, "the scheme must be s3://")
    if "@" in parts.netloc:
        raise _bad_url(url, "credentials in the URL are not accepted (they would end up in logs)")
    if parts.fragment:
        raise _bad_url(url, "a '#fragment' is not allowed")
    bucket = parts.netloc
    if not _BUCKET.match(bucket) or ".." in bucket:
        raise _bad_url(url, "the bucket name must be 3-63 lowercase letters, digits, '.' or '-'")
    prefix = validate_prefix(parts.path.lstrip("/"), field="artifact_store_url")
    query = parse_qs(parts.query, keep_blank_values=True, strict_parsing=False)
    unknown = sorted(set(query) - set(_QUERY_KEYS))
    if unknown:
        raise _bad_url(url, f"unknown query parameter(s) {', '.join(unknown)}; known: {', '.join(_QUERY_KEYS)}")
    endpoint = query.get("endpoint_url", [""])[-1]
    if endpoint:
        endpoint = _check_endpoint(endpoint, "the URL's endpoint_url")
    elif os.environ.get(ENDPOINT_ENV):
        endpoint = _check_endpoint(os.environ[ENDPOINT_ENV], ENDPOINT_ENV)
    region = query.get("region", [""])[-1] or None
    return {"bucket": bucket, "prefix": prefix, "endpoint_url": endpoint or None, "region": region}


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        yield cur
        cur = cur.__cause__ or cur.__context__


def _error_code(exc: BaseException) -> str | None:
    for e in _chain(exc):
        response = getattr(e, "response", None)
        if isinstance(response, dict):
            code = response.get("Error", {}).get("Code")
            if code:
                return str(code)
    return None


class S3ArtifactStore(ArtifactStore):
    """Objects are ``s3://<bucket>/<prefix>/<key>``. Thread-safe: s3fs runs every request on its own IO
    thread, and the only state here (whether the bucket was checked) is guarded by a lock."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        multipart_chunk_bytes: int = DEFAULT_MULTIPART_CHUNK,
    ) -> None:
        import s3fs  # lazy: botocore and aiohttp are heavy, and only S3 users need them

        self.bucket = bucket
        self.prefix = validate_prefix(prefix, field="artifact_store_url")
        self.endpoint_url = endpoint_url
        self.root_uri = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        self._chunk = multipart_chunk_bytes
        client_kwargs: dict[str, Any] = {}
        if region:
            client_kwargs["region_name"] = region
        self._fs = s3fs.S3FileSystem(
            endpoint_url=endpoint_url,
            client_kwargs=client_kwargs,
            config_kwargs={"connect_timeout": 5, "read_timeout": 60, "retries": {"max_attempts": 3}},
            # fsspec caches one filesystem per (endpoint, region): stores on one endpoint share a client.
            use_listings_cache=False,  # other servers and workers write too: never answer from a cache
        )
        self._fs.retries = 3  # s3fs's own retry loop (a class attribute): fail in seconds, not a minute
        self._bucket_checked = False
        self._lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str) -> S3ArtifactStore:
        p = parse_s3_url(url)
        return cls(str(p["bucket"]), str(p["prefix"]), endpoint_url=p["endpoint_url"], region=p["region"])

    def __repr__(self) -> str:
        where = f", endpoint_url={self.endpoint_url!r}" if self.endpoint_url else ""
        return f"S3ArtifactStore({self.root_uri!r}{where})"

    # -- names and errors ----------------------------------------------------------------------------

    def _name(self, key: str) -> str:
        """The S3 object name of a key: always under the prefix, because the key is validated first."""
        key = validate_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _where(self) -> str:
        return f"{self.root_uri} (endpoint {self.endpoint_url or 'AWS default'})"

    def _translate(self, exc: BaseException, key: str | None = None) -> KamadoError:
        """A kamado error for what S3 (or the network) said; never includes credentials."""
        code = _error_code(exc)
        names = {type(e).__name__ for e in _chain(exc)}
        if code == "NoSuchBucket":
            return ServiceUnavailable(
                f"The artifact store bucket {self.bucket!r} does not exist at {self._where()}; create it "
                f"(e.g. `aws s3 mb s3://{self.bucket}` or `mc mb`) or fix the bucket in KAMADO_ARTIFACTS.",
                details={"reason": "NoSuchBucket", "bucket": self.bucket},
            )
        if code in _CREDENTIAL_CODES:
            return ServiceUnavailable(
                f"The artifact store {self._where()} refused the server's credentials ({code}: "
                f"{_CREDENTIAL_CODES[code]}); {_CREDENTIALS_HINT}.",
                details={"reason": code, "bucket": self.bucket},
            )
        if names & set(_UNREACHABLE) or (code is None and isinstance(exc, ConnectionError)):
            return ServiceUnavailable(
                f"The artifact store endpoint {self.endpoint_url or 'AWS default'} cannot be reached "
                f"for {self.root_uri}; check that the S3 server runs and that the endpoint URL "
                f"(?endpoint_url= or {ENDPOINT_ENV}) names the right host and port.",
                details={"reason": "EndpointUnreachable", "bucket": self.bucket},
            )
        if key is not None and (code in ("NoSuchKey", "404") or isinstance(exc, FileNotFoundError)):
            return NotFound(
                f"Artifact {key!r} does not exist in {self.root_uri}; check the key or upload it first.",
                details={"key": key},
            )
        return ServiceUnavailable(
            f"The artifact store {self._where()} failed ({code or type(exc).__name__}); retry in a moment, "
            "and run `kamado doctor` if it keeps failing.",
            details={"reason": code or type(exc).__name__, "bucket": self.bucket},
        )

    def check_bucket(self) -> None:
        """Fail with a clear error unless the bucket exists and these credentials may list it.

        HEAD on a missing object and on a missing bucket both answer a bare 404 (and HEAD's 403 has no
        reason), so the bucket is checked once, before the first object call, with a one-key LIST, whose
        error body names the cause (NoSuchBucket, InvalidAccessKeyId, AccessDenied, ...).
        """
        prefix = self.prefix + "/" if self.prefix else ""
        try:
            self._fs.call_s3("list_objects_v2", Bucket=self.bucket, Prefix=prefix, MaxKeys=1)
        except Exception as exc:
            raise self._translate(exc) from None
        self._bucket_checked = True

    def _ready(self) -> None:
        if not self._bucket_checked:
            with self._lock:
                if not self._bucket_checked:
                    self.check_bucket()

    def _call(self, method: str, key: str | None = None, **kwargs: Any) -> dict[str, Any]:
        self._ready()
        try:
            return cast(dict[str, Any], self._fs.call_s3(method, Bucket=self.bucket, **kwargs))
        except Exception as exc:
            raise self._translate(exc, key) from None

    # -- ArtifactStore -------------------------------------------------------------------------------

    def uri(self, key: str) -> str:
        return f"{self.root_uri}/{validate_key(key)}"

    def key_from_uri(self, uri: str) -> str:
        """Accepts ``s3://bucket/prefix/key``; one trailing '/' (a prefix's URI) is dropped."""
        if not isinstance(uri, str) or not uri:
            raise InvalidSpec("uri must be a non-empty string.", details=[{"field": "uri", "message": "empty"}])
        if any(not ch.isprintable() for ch in uri) or not uri.startswith(self.root_uri + "/"):
            raise InvalidSpec(
                f"uri {ascii(uri)[:120]} does not point inside the artifact store {self.root_uri}; "
                f"use a URI of the form {self.root_uri}/<key>.",
                details=[{"field": "uri", "message": "not inside this store"}],
            )
        rest = uri[len(self.root_uri) + 1 :]
        if rest.endswith("/") and not rest.endswith("//"):
            rest = rest[:-1]
        return validate_key(rest, field="uri")

    def put_bytes(self, key: str, data: bytes) -> None:
        name = self._name(key)
        self._ready()
        try:
            self._fs.pipe_file(f"{self.bucket}/{name}", bytes(data), chunksize=self._chunk)
        except Exception as exc:
            raise self._translate(exc) from None

    def put_file(self, key: str, local_path: Path) -> None:
        name = self._name(key)
        local = Path(local_path)
        if not local.is_file():
            raise InvalidSpec(
                f"Local file {str(local)!r} does not exist or is not a file; nothing was uploaded.",
                details=[{"field": "local_path", "message": "not a file"}],
            )
        self._ready()
        try:
            self._fs.put_file(str(local), f"{self.bucket}/{name}", chunksize=self._chunk)
        except Exception as exc:
            raise self._translate(exc) from None

    def get_bytes(self, key: str) -> bytes:
        """One GET of the whole object: atomic against a concurrent overwrite (old or new, never both)."""
        name = self._name(key)
        self._ready()
        try:
            return bytes(self._fs.cat_file(f"{self.bucket}/{name}"))
        except Exception as exc:
            raise self._translate(exc, key) from None

    def get_file(self, key: str, local_path: Path) -> None:
        dest = Path(local_path)
        with self.open_read(key) as src:
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.parent / f".{dest.name[:64]}#kamado-tmp-{secrets.token_hex(8)}"
            try:
                with open(tmp, "xb") as out:
                    while chunk := src.read(1024 * 1024):
                        out.write(chunk)
                os.replace(tmp, dest)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise

    def open_read(self, key: str) -> BinaryIO:
        name = self._name(key)
        self._ready()
        try:
            fh = self._fs.open(f"{self.bucket}/{name}", "rb")
        except Exception as exc:
            raise self._translate(exc, key) from None
        if fh.details.get("type") != "file":  # a "directory" (a prefix of other keys) is not an object
            fh.close()
            raise NotFound(f"Artifact {key!r} does not exist in {self.root_uri}.", details={"key": key})
        return cast(BinaryIO, fh)

    def exists(self, key: str) -> bool:
        try:
            self.size(key)
        except NotFound:
            return False
        return True

    def size(self, key: str) -> int:
        head = self._call("head_object", key, Key=self._name(key))
        return int(head["ContentLength"])

    def etag(self, key: str) -> str:
        """The object's ETag (a multipart upload's ends in ``-<parts>``)."""
        return str(self._call("head_object", key, Key=self._name(key))["ETag"]).strip('"')

    def list(self, prefix: str) -> Iterator[str]:
        """Sorted keys under ``prefix``; object names that are not valid keys are skipped."""
        prefix = validate_prefix(prefix)
        base = "/".join(p for p in (self.prefix, prefix) if p)
        s3_prefix = base + "/" if base else ""
        cut = len(self.prefix) + 1 if self.prefix else 0
        keys: list[str] = []
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"Prefix": s3_prefix}
            if token:
                kwargs["ContinuationToken"] = token
            page = self._call("list_objects_v2", **kwargs)
            for obj in page.get("Contents", []):
                try:
                    keys.append(validate_key(obj["Key"][cut:]))
                except InvalidSpec:
                    continue
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                break
        return iter(sorted(keys))

    def delete(self, key: str) -> None:
        self._call("delete_object", key, Key=self._name(key))
