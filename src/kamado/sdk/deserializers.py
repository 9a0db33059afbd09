"""Response deserializers, as ``sagemaker.deserializers``: ``ACCEPT`` plus ``deserialize(body, content_type)``.

The same classes and results as the SageMaker Python SDK. ``body`` may be ``bytes`` (what kamado's client
returns) or a readable stream (what botocore returns), so deserializers written for SageMaker work here too.
``ACCEPT`` is a tuple; a ``Predictor`` sends it as one Accept header, preferred type first.
"""

from __future__ import annotations

import abc
import csv
import io
import json
from typing import Any

import numpy as np

__all__ = [
    "BaseDeserializer",
    "BytesDeserializer",
    "CSVDeserializer",
    "JSONDeserializer",
    "NumpyDeserializer",
    "PandasDeserializer",
    "SimpleBaseDeserializer",
    "StringDeserializer",
]


def _read(body: Any) -> bytes:
    if hasattr(body, "read"):
        try:
            data = body.read()
        finally:
            if hasattr(body, "close"):
                body.close()
        return data.encode() if isinstance(data, str) else bytes(data)
    if isinstance(body, str):
        return body.encode()
    return bytes(body)


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


class BaseDeserializer(abc.ABC):
    @property
    @abc.abstractmethod
    def ACCEPT(self) -> tuple[str, ...]: ...

    @abc.abstractmethod
    def deserialize(self, body: Any, content_type: str) -> Any: ...


class SimpleBaseDeserializer(BaseDeserializer):
    def __init__(self, accept: str | tuple[str, ...] | list[str] = "*/*") -> None:
        self.accept = accept

    @property
    def ACCEPT(self) -> tuple[str, ...]:
        return (self.accept,) if isinstance(self.accept, str) else tuple(self.accept)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(accept={self.accept!r})"


class StringDeserializer(SimpleBaseDeserializer):
    def __init__(self, encoding: str = "UTF-8", accept: str | tuple[str, ...] = "application/json") -> None:
        super().__init__(accept)
        self.encoding = encoding

    def deserialize(self, body: Any, content_type: str) -> str:
        return _read(body).decode(self.encoding)


class BytesDeserializer(SimpleBaseDeserializer):
    def deserialize(self, body: Any, content_type: str) -> bytes:
        return _read(body)


class CSVDeserializer(SimpleBaseDeserializer):
    """A list of rows, each a list of strings: CSV carries no types, so none are guessed."""

    def __init__(self, encoding: str = "utf-8", accept: str | tuple[str, ...] = "text/csv") -> None:
        super().__init__(accept)
        self.encoding = encoding

    def deserialize(self, body: Any, content_type: str) -> list[list[str]]:
        text = _read(body).decode(self.encoding)
        return [row for row in csv.reader(io.StringIO(text)) if row]


class JSONDeserializer(SimpleBaseDeserializer):
    def __init__(self, accept: str | tuple[str, ...] = "application/json") -> None:
        super().__init__(accept)

    def deserialize(self, body: Any, content_type: str) -> Any:
        return json.loads(_read(body))


class NumpyDeserializer(SimpleBaseDeserializer):
    """An array from ``.npy``, ``.npz``, JSON or CSV, whichever the model answered with. Pickled arrays are
    refused unless ``allow_pickle``: unpickling a response runs whatever code the server chose to send."""

    def __init__(
        self, dtype: Any = None, accept: str | tuple[str, ...] = "application/x-npy", allow_pickle: bool = False
    ) -> None:
        super().__init__(accept)
        self.dtype = dtype
        self.allow_pickle = allow_pickle

    def deserialize(self, body: Any, content_type: str) -> Any:
        data = _read(body)
        media = _media_type(content_type)
        if media == "text/csv":
            return np.genfromtxt(io.StringIO(data.decode("utf-8")), delimiter=",", dtype=self.dtype)
        if media == "application/json":
            return np.array(json.loads(data), dtype=self.dtype)
        if media == "application/x-npy":
            return np.load(io.BytesIO(data), allow_pickle=self.allow_pickle)
        if media == "application/x-npz":
            with np.load(io.BytesIO(data), allow_pickle=self.allow_pickle) as archive:
                return {k: archive[k] for k in archive.files}
        raise ValueError(f"{content_type!r} cannot be deserialized into a NumPy array")


class PandasDeserializer(SimpleBaseDeserializer):
    """A DataFrame from CSV (no header row) or JSON (``pandas.read_json``)."""

    def __init__(self, accept: str | tuple[str, ...] = ("text/csv", "application/json")) -> None:
        super().__init__(accept)

    def deserialize(self, body: Any, content_type: str) -> Any:
        import pandas as pd  # heavy: only for callers who asked for DataFrames

        data = _read(body)
        media = _media_type(content_type)
        if media == "text/csv":
            return pd.read_csv(io.BytesIO(data), header=None)
        if media == "application/json":
            return pd.read_json(io.StringIO(data.decode("utf-8")))
        raise ValueError(f"{content_type!r} cannot be deserialized into a pandas DataFrame")
