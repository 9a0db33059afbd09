"""Map-run item sources: an inline list, a json / jsonl / csv object, or every object under a prefix.

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
        out = []
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise _bad_source(uri, f"line {n}: not valid JSON ({exc.msg})") from None
        return out
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


def read_items(artifacts: ArtifactStore, req: StartMapRunRequest) -> list[Any]:
    if req.Items is not None:
        return list(req.Items)
    assert req.ItemSource is not None
    uri, fmt = req.ItemSource.Uri, req.ItemSource.Format
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
