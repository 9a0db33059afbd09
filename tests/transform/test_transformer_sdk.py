"""kamado.Transformer against a live server: local data uploaded, outputs written, failures raised."""

from __future__ import annotations

from pathlib import Path

import pytest

import kamado
from kamado.sdk.transformer import TransformJobFailed
from tests.live_server import LiveServer, live  # noqa: F401
from tests.transform.kit import INFERENCE, iris_rows, make_kit


def test_model_transformer_uploads_local_data_and_writes_outputs(live: LiveServer, tmp_path: Path) -> None:  # noqa: F811
    kit = make_kit(live.client, tmp_path / "kit")
    code = tmp_path / "code"
    code.mkdir()
    (code / "inference.py").write_text(INFERENCE)
    model = kamado.Model(
        model_data=str(tmp_path / "kit" / "model" / "model.tar.gz"),
        entry_point="inference.py",
        source_dir=str(code),
        client=live.client,
    )
    transformer = model.transformer(strategy="MultiRecord", assemble_with="Line", accept="text/csv")
    assert isinstance(transformer, kamado.Transformer)
    data = tmp_path / "data"
    data.mkdir()
    rows = iris_rows(300, 9)
    (data / "x.csv").write_text("".join(",".join(f"{v:g}" for v in r) + "\n" for r in rows))
    desc = transformer.transform(str(data), content_type="text/csv", split_type="Line", job_name="sdk-job")
    assert desc is not None and desc["TransformJobStatus"] == "Completed"
    assert transformer.latest_transform_job is not None
    assert transformer.latest_transform_job.describe()["TransformJobName"] == "sdk-job"
    assert transformer.output_path is not None
    assert kit.read_output(transformer.output_path, "x.csv.out") == kit.predictions(rows)

    rows[3] *= -1
    (data / "x.csv").write_text("".join(",".join(f"{v:g}" for v in r) + "\n" for r in rows))
    failing = model.transformer(strategy="SingleRecord", accept="text/csv")
    with pytest.raises(TransformJobFailed, match="1 of 300 records failed"):
        failing.transform(str(data), content_type="text/csv", split_type="Line")
