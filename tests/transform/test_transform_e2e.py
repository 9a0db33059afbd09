"""Transform jobs end to end over a live server: real model servers, real CSV files of 1,000 lines."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from kamado.core.errors import NotFound
from kamado.sdk.client import Client
from kamado.testing.hosting import stop_hosting_processes
from tests.live_server import LiveServer, live, start_server  # noqa: F401
from tests.transform.kit import iris_rows, make_kit, request

pytestmark = pytest.mark.timeout(120)


def test_multi_and_single_record_outputs_are_line_aligned(live: LiveServer, tmp_path: Path) -> None:  # noqa: F811
    kit = make_kit(live.client, tmp_path / "kit")
    kit.create_model("iris")
    files = {"a.csv": iris_rows(1000, 1), "sub/b.csv": iris_rows(1000, 2)}
    data = kit.upload_inputs("in", files)
    multi_out, single_out = kit.output_uri("multi"), kit.output_uri("single")
    live.client.create_transform_job(
        request("multi", "iris", data, multi_out, BatchStrategy="MultiRecord", MaxPayloadInMB=1)
    )
    live.client.create_transform_job(
        request("single", "iris", data, single_out, BatchStrategy="SingleRecord", MaxConcurrentTransforms=4)
    )
    for name, out in (("multi", multi_out), ("single", single_out)):
        desc = live.client.wait_for_transform_job(name, poll_s=0.1, timeout_s=90)
        assert desc["TransformJobStatus"] == "Completed", desc
        assert desc["Progress"]["RecordsCompleted"] == 2000 and desc["Progress"]["FilesCompleted"] == 2
        assert desc["TransformStartTime"] <= desc["TransformEndTime"]
        for file, rows in files.items():
            assert kit.read_output(out, file + ".out") == kit.predictions(rows), (name, file)
    listed = live.client.list_transform_jobs(StatusEquals="Completed")["TransformJobSummaries"]
    assert sorted(s["TransformJobName"] for s in listed) == ["multi", "single"]


def test_join_with_input_and_output_filter(live: LiveServer, tmp_path: Path) -> None:  # noqa: F811
    kit = make_kit(live.client, tmp_path / "kit")
    kit.create_model("iris")
    rows = iris_rows(1000, 3)
    data = kit.upload_inputs("in", {"x.csv": rows})
    out = kit.output_uri("joined")
    live.client.create_transform_job(
        request(
            "joined",
            "iris",
            data,
            out,
            BatchStrategy="MultiRecord",
            DataProcessing={"InputFilter": "$[0:4]", "JoinSource": "Input", "OutputFilter": "$[0,-1]"},
        )
    )
    desc = live.client.wait_for_transform_job("joined", poll_s=0.1, timeout_s=60)
    assert desc["TransformJobStatus"] == "Completed", desc
    expected = [f"{row[0]:g},{p}" for row, p in zip(rows, kit.predictions(rows), strict=True)]
    assert kit.read_output(out, "x.csv.out") == expected


def test_failing_records_fail_the_job_with_count_and_position(live: LiveServer, tmp_path: Path) -> None:  # noqa: F811
    kit = make_kit(live.client, tmp_path / "kit")
    kit.create_model("iris")
    good, bad = iris_rows(1000, 4), iris_rows(1000, 5)
    bad[[99, 500, 501]] *= -1  # lines 100, 501 and 502
    data = kit.upload_inputs("in", {"good.csv": good, "bad.csv": bad})
    out = kit.output_uri("failing")
    live.client.create_transform_job(request("failing", "iris", data, out, BatchStrategy="SingleRecord"))
    desc = live.client.wait_for_transform_job("failing", poll_s=0.1, timeout_s=60)
    assert desc["TransformJobStatus"] == "Failed", desc
    reason = desc["FailureReason"]
    assert reason.startswith("3 of 2000 records failed, in 1 of 2 input objects"), reason
    assert "bad.csv line 100:" in reason and "poisoned row" in reason, reason
    assert [f["Lines"] for f in desc["FailedRecords"]] == ["line 100", "line 501", "line 502"]
    assert kit.read_output(out, "good.csv.out") == kit.predictions(good)  # the good object's output is kept
    with pytest.raises(NotFound):
        kit.read_output(out, "bad.csv.out")


def test_stop_ends_stopped_and_stops_the_model_servers(live: LiveServer, tmp_path: Path) -> None:  # noqa: F811
    kit = make_kit(live.client, tmp_path / "kit")
    kit.create_model("slow", KIT_SLEEP_S="0.05")
    data = kit.upload_inputs("in", {"x.csv": iris_rows(1000, 6)})
    live.client.create_transform_job(request("slow", "slow", data, kit.output_uri("slow")))
    deadline = time.monotonic() + 30
    while live.client.describe_transform_job("slow")["Progress"]["RecordsCompleted"] == 0:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    live.client.stop_transform_job("slow")
    desc = live.client.wait_for_transform_job("slow", poll_s=0.05, timeout_s=30)
    assert desc["TransformJobStatus"] == "Stopped", desc
    assert 0 < desc["Progress"]["RecordsCompleted"] < 1000
    platform = live.app.state.platform
    deadline = time.monotonic() + 15
    handles = [h for h in platform.executor.list_tasks() if h.task_id.startswith("transform-job/slow/")]
    assert handles
    while any(not platform.executor.poll(h).state.is_terminal() for h in handles):
        assert time.monotonic() < deadline, "model servers still running after the job stopped"
        time.sleep(0.05)


def test_a_job_resumes_after_a_server_restart(tmp_path: Path) -> None:
    home = tmp_path / "home"
    server, thread, url, _ = start_server(home)
    client = Client(url)
    try:
        kit = make_kit(client, tmp_path / "kit")
        kit.create_model("slowish", KIT_SLEEP_S="0.01")
        files = {"a.csv": iris_rows(100, 7), "b.csv": iris_rows(100, 8)}
        data = kit.upload_inputs("in", files)
        out = kit.output_uri("resumed")
        client.create_transform_job(request("resumed", "slowish", data, out))
        deadline = time.monotonic() + 30
        while client.describe_transform_job("resumed")["Progress"]["FilesCompleted"] < 1:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        server.should_exit = True  # mid-job: the second object is being fed
        thread.join(30)
        client.close()
        server, thread, url, _ = start_server(home)
        client = Client(url)
        desc = client.wait_for_transform_job("resumed", poll_s=0.05, timeout_s=60)
        assert desc["TransformJobStatus"] == "Completed", desc
        for file, rows in files.items():
            kit.client = client
            assert kit.read_output(out, file + ".out") == kit.predictions(rows)
        assert desc["Progress"]["FilesCompleted"] == 2 and desc["Progress"]["RecordsCompleted"] == 200
    finally:
        client.close()
        server.should_exit = True
        thread.join(30)
        stop_hosting_processes(home)
