"""Map-run item sources: an inline list, a json / jsonl / csv object, or every object under a prefix.
(A previous map run's results, the fourth source, are read by :class:`~kamado.functions.maprun.MapRunService`.)

A source that does not exist or does not parse is refused with InvalidSpec naming the line, before a run
is created.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from kamado.artifacts.base import ArtifactStore
from kamado.core.errors import InvalidSpec
from kamado.functions.spec import StartMapRunRequest


def _bad_source(uri: str, message: str) -> InvalidSpec:
    return InvalidSpec(f"ItemSource {uri!r}: {message}", details=[{"field": "ItemSource", "message": message}])


def parse_items(data: bytes, fmt: str, uri: str) -> list[Any]:
    """Items of a json (array), jsonl or csv (header row) document; InvalidSpec naming the line on error."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _bad_source(uri, f"not UTF-8 text ({exc})") from None
    if fmt == "json":
        try:
            items = json.loads(text)
        except json.JSONDecodeError as exc:
            raise _bad_source(uri, f"line {exc.lineno}: not valid JSON ({exc.msg})") from None
        if not isinstance(items, list):
            raise _bad_source(uri, "a json item source must hold one array of items")
        return items
    if fmt == "jsonl":
        return [item for item, _ in _jsonl(text, uri)]
    reader = csv.DictReader(io.StringIO(text, newline=""))
    rows = []
    try:
        for row in reader:
            if None in row or any(v is None for v in row.values()):
                raise _bad_source(uri, f"line {reader.line_num}: the row does not have as many fields as the header")
            rows.append(dict(row))
    except csv.Error as exc:
        raise _bad_source(uri, f"line {reader.line_num}: {exc}") from None
    return rows


def _jsonl(text: str, uri: str) -> list[tuple[Any, str]]:
    """Each non-blank line's item and its text (stripped), checked line by line so an error names its line."""
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if stripped:
            try:
                out.append((json.loads(stripped), stripped))
            except json.JSONDecodeError as exc:
                raise _bad_source(uri, f"line {n}: not valid JSON ({exc.msg})") from None
    return out


_ENCODER = json.JSONEncoder(separators=(",", ":"))


def item_lines(artifacts: ArtifactStore, req: StartMapRunRequest) -> list[str]:
    """The items as JSON text, one per item, for the run's items object. A jsonl source's lines are kept as
    they are (once checked) rather than parsed and encoded again: create's cost for a large run."""
    if req.ItemSource is not None and req.ItemSource.Uri is not None and req.ItemSource.format == "jsonl":
        uri = req.ItemSource.Uri
        data = _get(artifacts, uri)
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise _bad_source(uri, f"not UTF-8 text ({exc})") from None
        return [line for _, line in _jsonl(text, uri)]
    return encode_items(read_items(artifacts, req))


def encode_items(items: list[Any]) -> list[str]:
    encode = _ENCODER.encode
    return [encode(it) for it in items]


def _get(artifacts: ArtifactStore, uri: str) -> bytes:
    try:
        key = artifacts.key_from_uri(uri).rstrip("/")
    except InvalidSpec as exc:
        raise _bad_source(uri, f"not in the artifact store ({exc.message})") from None
    if not artifacts.exists(key):
        raise _bad_source(uri, "does not exist; upload it first (kamado.Client.upload_file)")
    return artifacts.get_bytes(key)


def read_items(artifacts: ArtifactStore, req: StartMapRunRequest) -> list[Any]:
    if req.Items is not None:
        return list(req.Items)
    assert req.ItemSource is not None and req.ItemSource.Uri is not None
    uri, fmt = req.ItemSource.Uri, req.ItemSource.format
    try:
        key = artifacts.key_from_uri(uri).rstrip("/")
    except InvalidSpec as exc:
        raise _bad_source(uri, f"not in the artifact store ({exc.message})") from None
    if fmt == "prefix":
        keys = sorted(artifacts.list(key))
        if not keys:
            raise _bad_source(uri, "no object under this prefix")
        return [{"Key": k, "Uri": artifacts.uri(k)} for k in keys]
    if not artifacts.exists(key):
        raise _bad_source(uri, "does not exist; upload it first (kamado.Client.upload_file)")
    return parse_items(artifacts.get_bytes(key), fmt, uri)
