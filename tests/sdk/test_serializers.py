"""Serializers and deserializers produce what the SageMaker SDK's do, and what kamado's model server reads."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest

from kamado.hosting.handlers import default_input_fn, default_output_fn
from kamado.sdk.deserializers import (
    BytesDeserializer,
    CSVDeserializer,
    JSONDeserializer,
    NumpyDeserializer,
    PandasDeserializer,
    StringDeserializer,
)
from kamado.sdk.serializers import CSVSerializer, IdentitySerializer, JSONSerializer, NumpySerializer

ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]


def test_content_types_and_accepts_are_sagemakers() -> None:
    assert JSONSerializer().CONTENT_TYPE == "application/json"
    assert CSVSerializer().CONTENT_TYPE == "text/csv"
    assert NumpySerializer().CONTENT_TYPE == "application/x-npy"
    assert IdentitySerializer().CONTENT_TYPE == "application/octet-stream"
    assert IdentitySerializer("image/png").CONTENT_TYPE == "image/png"
    assert JSONDeserializer().ACCEPT == ("application/json",)
    assert CSVDeserializer().ACCEPT == ("text/csv",)
    assert NumpyDeserializer().ACCEPT == ("application/x-npy",)
    assert BytesDeserializer().ACCEPT == ("*/*",)
    assert StringDeserializer().ACCEPT == ("application/json",)
    assert PandasDeserializer().ACCEPT == ("text/csv", "application/json")


def test_json_serializer() -> None:
    s = JSONSerializer()
    assert s.serialize(ROWS) == json.dumps(ROWS)
    assert s.serialize(np.array(ROWS)) == json.dumps(ROWS)
    assert s.serialize({"instances": np.array([1, 2])}) == '{"instances": [1, 2]}'
    assert s.serialize(pd.DataFrame(ROWS)) == json.dumps(ROWS)
    assert s.serialize(pd.Series([1, 2])) == "[1, 2]"
    assert s.serialize(io.StringIO('{"a": 1}')) == '{"a": 1}'


def test_csv_serializer() -> None:
    s = CSVSerializer()
    assert s.serialize(ROWS) == "5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3"
    assert s.serialize(ROWS[0]) == "5.1,3.5,1.4,0.2"
    assert s.serialize(np.array(ROWS)) == "5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3"
    assert s.serialize(pd.DataFrame(ROWS)) == "5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3"
    assert s.serialize("1,2\n3,4") == "1,2\n3,4"
    assert s.serialize([["a,b", 1]]) == '"a,b",1', "values with commas are quoted, as csv.writer does"
    with pytest.raises(ValueError, match="empty"):
        s.serialize([])
    with pytest.raises(ValueError, match="Unable"):
        s.serialize(3)


def test_numpy_serializer_round_trips_and_refuses_pickles() -> None:
    s = NumpySerializer()
    body = s.serialize(ROWS)
    assert isinstance(body, bytes)
    np.testing.assert_array_equal(np.load(io.BytesIO(body)), np.array(ROWS))
    assert np.load(io.BytesIO(NumpySerializer(dtype="float32").serialize(ROWS))).dtype == np.float32
    with pytest.raises(ValueError, match="empty"):
        s.serialize(np.array([]))
    with pytest.raises(ValueError):
        s.serialize(np.array([{"a": 1}], dtype=object))


def test_identity_serializer_sends_bytes_unchanged() -> None:
    assert IdentitySerializer().serialize(b"\x00\x01") == b"\x00\x01"


@pytest.mark.parametrize(
    "serializer", [JSONSerializer(), CSVSerializer(), NumpySerializer()], ids=["json", "csv", "npy"]
)
def test_the_model_server_reads_what_each_serializer_sends(serializer: JSONSerializer) -> None:
    body = serializer.serialize(np.array(ROWS))
    decoded = default_input_fn(body.encode() if isinstance(body, str) else body, serializer.CONTENT_TYPE)
    np.testing.assert_allclose(np.asarray(decoded, dtype=float), np.array(ROWS))


def test_deserializers_read_what_the_model_server_writes() -> None:
    prediction = np.array([0, 2])
    body, ctype = default_output_fn(prediction, "application/json")
    assert JSONDeserializer().deserialize(body, ctype) == [0, 2]
    assert StringDeserializer().deserialize(body, ctype) == "[0, 2]"
    assert BytesDeserializer().deserialize(io.BytesIO(body), ctype) == body, "a stream, as botocore gives"
    np.testing.assert_array_equal(NumpyDeserializer().deserialize(body, ctype), prediction)

    body, ctype = default_output_fn(prediction, "text/csv")
    assert CSVDeserializer().deserialize(body, ctype) == [["0"], ["2"]]
    np.testing.assert_array_equal(NumpyDeserializer().deserialize(body, ctype), prediction)
    assert PandasDeserializer().deserialize(body, ctype)[0].tolist() == [0, 2]

    body, ctype = default_output_fn(prediction, "application/x-npy")
    np.testing.assert_array_equal(NumpyDeserializer().deserialize(body, ctype), prediction)
    np.testing.assert_array_equal(
        NumpyDeserializer().deserialize(body, "application/x-npy; charset=binary"), prediction
    )


def test_numpy_deserializer_names_what_it_cannot_read() -> None:
    with pytest.raises(ValueError, match="image/png"):
        NumpyDeserializer().deserialize(b"\x89PNG", "image/png")
    pickled = io.BytesIO()
    np.save(pickled, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError):
        NumpyDeserializer().deserialize(pickled.getvalue(), "application/x-npy")
