"""Validation at submit: bad requests are 400s naming the field, and nothing is stored. Plus the pure parts:
JSONPath filters, record splitting and batching, joins and output assembly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kamado.core.errors import InvalidSpec
from kamado.transform.jsonpath import parse_path
from kamado.transform.records import DataProcessor, assemble, split_records, split_response
from kamado.transform.spec import CreateTransformJobRequest, DataProcessingSpec
from tests.live_server import LiveServer, live  # noqa: F401
from tests.transform.kit import iris_rows, make_kit, request


def _fields(exc: InvalidSpec) -> str:
    return str(exc.details) + exc.message


def test_bad_requests_are_400_naming_the_field_and_store_nothing(live: LiveServer, tmp_path: Path) -> None:  # noqa: F811
    kit = make_kit(live.client, tmp_path / "kit")
    kit.create_model("iris")
    data = kit.upload_inputs("in", {"x.csv": iris_rows(3, 0)})
    out = kit.output_uri("o")
    missing = data.rsplit("/", 1)[0] + "/" + "0" * 64
    cases: list[tuple[dict[str, Any], str]] = [
        (
            request("j1", "iris", data, out, BatchStrategy="MultiRecord", TransformInput={"SplitType": "None"}),
            "MultiRecord needs TransformInput.SplitType Line",
        ),
        (request("j2", "no-such-model", data, out), "ModelName"),
        (request("j3", "iris", missing, out), "TransformInput.DataSource.S3DataSource.S3Uri"),
        (request("j4", "iris", data, "s3://elsewhere/out"), "TransformOutput.S3OutputPath"),
        (request("j5", "iris", data, out, Surprise=1), "Surprise"),
        (request("j6", "iris", data, out, MaxConcurrentTransforms=50, MaxPayloadInMB=6), "at most 100 MB"),
        (request("j7", "iris", data, out, MaxPayloadInMB=20), "MaxPayloadInMB"),
        (request("j8", "iris", data, out, DataProcessing={"InputFilter": "$.features"}), "index paths only"),
        (request("j9", "iris", data, out, DataProcessing={"OutputFilter": "$..x"}), "unsupported syntax"),
        (
            request(
                "j10",
                "iris",
                data,
                out,
                TransformInput={"DataSource": {"S3DataSource": {"S3DataType": "ManifestFile", "S3Uri": data}}},
            ),
            "not supported yet",
        ),
    ]
    for body, field in cases:
        with pytest.raises(InvalidSpec) as err:
            live.client.create_transform_job(body)
        assert field in _fields(err.value), (body["TransformJobName"], err.value.message, err.value.details)
    assert live.client.list_transform_jobs()["TransformJobSummaries"] == []


def test_describe_and_stop_of_unknown_or_finished_jobs(live: LiveServer) -> None:  # noqa: F811
    from kamado.core.errors import NotFound

    with pytest.raises(NotFound, match="transform job 'nope'"):
        live.client.describe_transform_job("nope")
    with pytest.raises(NotFound):
        live.client.stop_transform_job("nope")


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("$", [1, 2], [1, 2]),
        ("$[1]", ["a", "b", "c"], "b"),
        ("$[-1]", ["a", "b", "c"], "c"),
        ("$[1:]", ["a", "b", "c"], ["b", "c"]),
        ("$[0,2]", ["a", "b", "c"], ["a", "c"]),
        ("$[0,2:]", ["a", "b", "c", "d"], ["a", "c", "d"]),
        ("$.a.b", {"a": {"b": 3}}, 3),
        ("$['id','SageMakerOutput']", {"id": 1, "x": 2, "SageMakerOutput": 3}, {"id": 1, "SageMakerOutput": 3}),
        ("$.*", {"a": 1, "b": 2}, [1, 2]),
        ("$.features[0]", {"features": [7, 8]}, 7),
    ],
)
def test_jsonpath_subset(path: str, value: Any, expected: Any) -> None:
    assert parse_path(path).apply(value) == expected


@pytest.mark.parametrize("bad", ["features", "$..a", "$[?(@.a)]", "$[]", "$[a]"])
def test_jsonpath_refuses_what_it_does_not_support(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_path(bad)


def test_split_batch_and_assemble() -> None:
    assert split_records(b"a\r\nb\nc\n", "Line") == [b"a", b"b", b"c"]
    assert split_records(b"a\nb", "None") == [b"a\nb"]
    proc = DataProcessor(None, "text/csv", "text/csv")
    records = [b"1,2", b"3,4", b"5,6"]
    multi = list(proc.batches(records, multi=True, max_bytes=8))
    assert [(b.first, b.count, b.body) for b in multi] == [(0, 2, b"1,2\n3,4\n"), (2, 1, b"5,6\n")]
    assert [b.lines() for b in multi] == ["lines 1-2", "line 3"]
    single = list(proc.batches(records, multi=False, max_bytes=3))
    assert [b.body for b in single] == [b"1,2", b"3,4", b"5,6"]
    too_big = list(proc.batches([b"1", b"123456789", b"2"], multi=True, max_bytes=4))
    assert [(b.first, b.count, b.error is not None) for b in too_big] == [(0, 1, False), (1, 1, True), (2, 1, False)]
    assert assemble([b"1\n2\n", b"3"], "Line") == b"1\n2\n3\n"
    assert assemble([b"[1]", b"[2]"], "None") == b"[1][2]"


def test_joins_and_output_filters() -> None:
    csv = DataProcessor(
        DataProcessingSpec(InputFilter="$[1:]", JoinSource="Input", OutputFilter="$[0,-1]"), "text/csv", None
    )
    batch = next(iter(csv.batches([b"id1,5.1,3.5", b"id2,6.0,2.2"], multi=True, max_bytes=100)))
    assert batch.body == b"5.1,3.5\n6.0,2.2\n"
    assert csv.finish(batch, b"0\n2\n", multi=True) == b"id1,0\nid2,2"
    js = DataProcessor(
        DataProcessingSpec(JoinSource="Input", OutputFilter="$['id','SageMakerOutput']"), "application/json", None
    )
    batch = next(iter(js.batches([b'{"id": 1, "x": [1]}'], multi=False, max_bytes=100)))
    assert js.finish(batch, b"[0.5]", multi=False) == b'{"id":1,"SageMakerOutput":[0.5]}'
    plain = DataProcessor(DataProcessingSpec(JoinSource="Input"), "application/json", None)
    batch = next(iter(plain.batches([b"[1, 2]", b"[3, 4]"], multi=True, max_bytes=100)))
    out = plain.finish(batch, b"[7, 8]", multi=True)
    assert out == b'{"SageMakerInput":[1,2],"SageMakerOutput":7}\n{"SageMakerInput":[3,4],"SageMakerOutput":8}'
    with pytest.raises(ValueError, match="answered 1 lines for 2 records"):
        split_response(b"7\n", 2)


def test_multirecord_without_split_is_refused_declaratively() -> None:
    body = request("j", "m", "file:///x", "file:///y", BatchStrategy="MultiRecord")
    body["TransformInput"]["SplitType"] = "None"
    with pytest.raises(ValueError, match="SplitType Line"):
        CreateTransformJobRequest.model_validate(body)
