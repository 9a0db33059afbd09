"""Request serializers, as ``sagemaker.serializers``: ``CONTENT_TYPE`` plus ``serialize(data)``.

The same classes and the same outputs as the SageMaker Python SDK, so a ``Predictor`` configured for
SageMaker sends byte-identical requests to kamado, and an inference script's ``input_fn`` sees what it
would see there. ``serialize`` may return ``str`` (sent as UTF-8) or ``bytes``, as in that SDK.
"""

from __future__ import annotations

import abc
import csv
import io
import json
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = [
    "BaseSerializer",
    "CSVSerializer",
    "IdentitySerializer",
    "JSONSerializer",
    "NumpySerializer",
    "SimpleBaseSerializer",
]


class BaseSerializer(abc.ABC):
    """What a ``Predictor`` needs from a serializer: the request's Content-Type and its body."""

    @property
    @abc.abstractmethod
    def CONTENT_TYPE(self) -> str: ...

    @abc.abstractmethod
    def serialize(self, data: Any) -> str | bytes: ...


class SimpleBaseSerializer(BaseSerializer):
    def __init__(self, content_type: str = "application/json") -> None:
        if not isinstance(content_type, str):
            raise ValueError(f"content_type must be a string, not {type(content_type).__name__}")
        self.content_type = content_type

    @property
    def CONTENT_TYPE(self) -> str:
        return self.content_type

    def __repr__(self) -> str:
        return f"{type(self).__name__}(content_type={self.content_type!r})"


def _is_dataframe(data: Any) -> bool:
    # No pandas import: it is heavy, and a caller holding a DataFrame has imported it already.
    return type(data).__name__ == "DataFrame" and hasattr(data, "to_csv")


def _tolist(data: Any) -> Any:
    if _is_dataframe(data):
        return data.to_numpy().tolist()
    if hasattr(data, "tolist"):  # numpy arrays and scalars, pandas Series
        return data.tolist()
    return data


class JSONSerializer(SimpleBaseSerializer):
    """Arrays, DataFrames (as a list of rows) and anything ``json.dumps`` takes; a file-like is sent as is."""

    def serialize(self, data: Any) -> str | bytes:
        if isinstance(data, Mapping):
            return json.dumps({k: _tolist(v) for k, v in data.items()})
        if hasattr(data, "read"):
            return data.read()
        return json.dumps(_tolist(data))


class CSVSerializer(SimpleBaseSerializer):
    """One row per line, no header: what SageMaker's built-in containers read as ``text/csv``."""

    def __init__(self, content_type: str = "text/csv") -> None:
        super().__init__(content_type)

    def serialize(self, data: Any) -> str | bytes:
        if hasattr(data, "read"):
            return data.read()
        if _is_dataframe(data):
            return str(data.to_csv(header=False, index=False)).rstrip("\r\n")
        if isinstance(data, str):
            return data
        multiple_rows = (
            _is_sequence_like(data) and hasattr(data, "__setitem__") and len(data) > 0 and _is_sequence_like(data[0])
        )
        if multiple_rows:
            return "\n".join(self._serialize_row(row) for row in data)
        return self._serialize_row(data)

    @staticmethod
    def _serialize_row(data: Any) -> str:
        if isinstance(data, str):
            return data
        if isinstance(data, np.ndarray):
            data = data.flatten()
        if hasattr(data, "__len__"):
            if len(data) == 0:
                raise ValueError("Cannot serialize an empty row as CSV")
            buffer = io.StringIO()
            csv.writer(buffer, delimiter=",").writerow(list(data))
            return buffer.getvalue().rstrip("\r\n")
        raise ValueError(f"Unable to serialize {type(data).__name__} as CSV; pass rows of values or a string")


def _is_sequence_like(data: Any) -> bool:
    return hasattr(data, "__iter__") and hasattr(data, "__getitem__") and not isinstance(data, str | bytes)


class NumpySerializer(SimpleBaseSerializer):
    """The ``.npy`` format (``application/x-npy``). Object arrays are refused: the model server loads with
    ``allow_pickle=False``, so an array that needs pickling is better refused here than there."""

    def __init__(self, dtype: Any = None, content_type: str = "application/x-npy") -> None:
        super().__init__(content_type)
        self.dtype = dtype

    def serialize(self, data: Any) -> str | bytes:
        if hasattr(data, "read"):
            return data.read()
        if isinstance(data, np.ndarray):
            if data.size == 0:
                raise ValueError("Cannot serialize an empty array")
            array = data if self.dtype is None else data.astype(self.dtype)
        else:
            if isinstance(data, list) and not data:
                raise ValueError("Cannot serialize an empty list")
            array = np.asarray(_tolist(data), dtype=self.dtype)
        buffer = io.BytesIO()
        np.save(buffer, array, allow_pickle=False)
        return buffer.getvalue()


class IdentitySerializer(SimpleBaseSerializer):
    """Sends ``data`` unchanged: for bodies already in the model's format (images, protobuf, ...)."""

    def __init__(self, content_type: str = "application/octet-stream") -> None:
        super().__init__(content_type)

    def serialize(self, data: Any) -> str | bytes:
        return data
