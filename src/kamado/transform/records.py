"""Records of a transform job: split an object, batch records into requests, and turn the model's answers
back into output, with SageMaker's DataProcessing (input filter, join with the input, output filter).

Pure functions over bytes: no I/O, no HTTP, so every rule here is tested in milliseconds.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from kamado.transform.jsonpath import Path, parse_path
from kamado.transform.spec import CSV_TYPES, DataProcessingSpec, media


@dataclass(frozen=True)
class Batch:
    """One request: records ``first`` .. ``first + count - 1`` (0-based) of one object."""

    first: int
    count: int
    body: bytes
    #: The records as read (before the input filter), kept only when the output is joined with them.
    inputs: tuple[bytes, ...] = ()
    #: Why this batch cannot be sent (a record bigger than MaxPayloadInMB); it counts as failed.
    error: str | None = None

    def lines(self) -> str:
        first, last = self.first + 1, self.first + self.count
        return f"line {first}" if first == last else f"lines {first}-{last}"


def split_records(data: bytes, split_type: str) -> list[bytes]:
    """``Line``: one record per line (``\\r\\n`` or ``\\n``; a final newline ends the last record, it does
    not start an empty one). ``None``: the whole object is one record."""
    if split_type != "Line":
        return [data]
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return [ln[:-1] if ln.endswith(b"\r") else ln for ln in lines]


class DataProcessor:
    """Applies a job's DataProcessing to records. The identity (no filters, no join) touches nothing."""

    def __init__(self, dp: DataProcessingSpec | None, content_type: str | None, accept: str | None) -> None:
        dp = dp or DataProcessingSpec()
        self.input_filter: Path = parse_path(dp.InputFilter)
        self.output_filter: Path = parse_path(dp.OutputFilter)
        self.join = dp.JoinSource == "Input"
        self.input_csv = media(content_type) in CSV_TYPES
        out_type = media(content_type) if self.join or not accept else media(accept)
        self.output_csv = out_type in CSV_TYPES

    @property
    def identity(self) -> bool:
        return self.input_filter.is_root() and self.output_filter.is_root() and not self.join

    @property
    def per_record_output(self) -> bool:
        """Whether the model's answer must be cut into one output per record (to join or filter it)."""
        return self.join or not self.output_filter.is_root()

    # -- input side ---------------------------------------------------------------------------------------
    def prepare(self, record: bytes) -> bytes:
        if self.input_filter.is_root():
            return record
        return _dump(self.input_filter.apply(_load(record, self.input_csv)), self.input_csv)

    def batches(self, records: Sequence[bytes], *, multi: bool, max_bytes: int) -> Iterator[Batch]:
        """Requests in input order: one record each (SingleRecord), or as many whole records as fit in
        ``max_bytes`` (MultiRecord; records are sent newline-terminated). Batches never span objects."""
        keep = self.per_record_output
        body: list[bytes] = []
        start, size = 0, 0
        for i, record in enumerate(records):
            try:
                sent = self.prepare(record) + (b"\n" if multi else b"")
                error = None if len(sent) <= max_bytes else f"the record is {len(sent)} bytes, over MaxPayloadInMB"
            except ValueError as exc:  # not CSV/JSON, or the InputFilter does not apply to it
                sent, error = b"", f"InputFilter: {exc}"
            if error is not None:
                if body:
                    yield self._batch(records, start, body, keep)
                yield Batch(first=i, count=1, body=b"", error=error)
                start, body, size = i + 1, [], 0
                continue
            if body and (not multi or size + len(sent) > max_bytes):
                yield self._batch(records, start, body, keep)
                start, body, size = i, [], 0
            body.append(sent)
            size += len(sent)
        if body:
            yield self._batch(records, start, body, keep)

    @staticmethod
    def _batch(records: Sequence[bytes], start: int, body: list[bytes], keep: bool) -> Batch:
        inputs = tuple(records[start : start + len(body)]) if keep else ()
        return Batch(first=start, count=len(body), body=b"".join(body), inputs=inputs)

    # -- output side --------------------------------------------------------------------------------------
    def finish(self, batch: Batch, response: bytes, *, multi: bool) -> bytes:
        """The output of one answered batch: the answer as is, or (with a join or an output filter) one
        processed line per record. Raises ValueError when the answer cannot be matched to the records."""
        if not self.per_record_output:
            return response
        outputs = [response.strip()] if not multi else split_response(response, batch.count)
        if self.join:
            inputs = batch.inputs or (b"",) * batch.count
            rows = [self._joined(raw, out) for raw, out in zip(inputs, outputs, strict=True)]
        else:
            rows = [_load(out, self.output_csv) for out in outputs]
        return b"\n".join(_dump(self.output_filter.apply(row), self.output_csv) for row in rows)

    def _joined(self, raw: bytes, output: bytes) -> Any:
        if self.input_csv:
            return _load(raw, True) + _load(output, True)
        value = _load(raw, False)
        result = _json_or_text(output)
        if isinstance(value, dict):
            return {**value, "SageMakerOutput": result}
        return {"SageMakerInput": value, "SageMakerOutput": result}


def split_response(response: bytes, count: int) -> list[bytes]:
    """A MultiRecord answer cut into ``count`` outputs: a JSON array of ``count`` items, else ``count``
    lines (what the default ``output_fn`` writes for ``text/csv`` and JSON lines)."""
    text = response.strip()
    if text.startswith(b"["):
        try:
            items = json.loads(text)
        except ValueError:
            items = None
        if isinstance(items, list) and len(items) == count:
            return [_dump(item, False) for item in items]
    lines = [ln.rstrip(b"\r") for ln in text.split(b"\n")] if text else []
    if len(lines) != count:
        raise ValueError(
            f"the model answered {len(lines)} lines for {count} records; to join or filter its output, it must "
            "answer one line (or one JSON array item) per record"
        )
    return lines


def assemble(pieces: Sequence[bytes], assemble_with: str) -> bytes:
    """An object's output from its batches' outputs, in input order: ``Line`` ends each with a newline
    (unless it already does), ``None`` concatenates them as the model answered."""
    if assemble_with != "Line":
        return b"".join(pieces)
    return b"".join(p if p.endswith(b"\n") else p + b"\n" for p in pieces)


def _load(record: bytes, csv: bool) -> Any:
    text = record.decode("utf-8")
    if csv:
        return text.split(",")
    return json.loads(text)


def _json_or_text(data: bytes) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return data.decode("utf-8", "replace")


def _dump(value: Any, csv: bool) -> bytes:
    if csv:
        values = value if isinstance(value, list) else [value]
        return ",".join(v if isinstance(v, str) else json.dumps(v) for v in values).encode()
    return json.dumps(value, separators=(",", ":")).encode()
