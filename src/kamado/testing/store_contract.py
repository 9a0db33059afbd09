"""The metadata store contract: every ``MetadataStore`` backend must pass these tests.

Subclass :class:`StoreContract` and provide a ``store`` pytest fixture yielding a fresh, empty store.
"""

from __future__ import annotations

import threading
import time

import pytest
from pydantic import ValidationError

from kamado.core.errors import ConcurrentModification, IllegalTransition, InvalidSpec, NotFound, ResourceInUse
from kamado.core.projects import project_scope
from kamado.store.base import MetadataStore
from kamado.store.records import ListQuery, MetricPoint


def _create(
    store: MetadataStore,
    name: str,
    *,
    kind: str = "training-job",
    state: str = "InProgress",
    parent: str | None = None,
) -> None:
    store.create(
        kind=kind,
        name=name,
        arn=f"arn:test:{kind}/{name}",
        state=state,
        spec={"n": name},
        status={"SecondaryStatus": "Starting"},
        tags={"team": "a"},
        parent=parent,
    )


class StoreContract:
    def test_create_get_round_trip(self, store: MetadataStore) -> None:
        rec = store.create(
            kind="training-job",
            name="j1",
            arn="arn:x",
            state="InProgress",
            spec={"a": [1, 2], "b": {"c": "d"}},
            status={"s": 1},
            tags={"k": "v"},
        )
        got = store.get("training-job", "j1")
        assert got == rec
        assert got.spec == {"a": [1, 2], "b": {"c": "d"}}
        assert got.tags == {"k": "v"} and got.version == 1

    def test_records_are_frozen(self, store: MetadataStore) -> None:
        _create(store, "frozen")
        rec = store.get("training-job", "frozen")
        with pytest.raises(ValidationError):
            rec.state = "Completed"

    def test_duplicate_name_is_resource_in_use(self, store: MetadataStore) -> None:
        _create(store, "dup")
        with pytest.raises(ResourceInUse):
            _create(store, "dup")
        # Same name under another kind is a different resource.
        _create(store, "dup", kind="endpoint")
        assert store.get("endpoint", "dup").kind == "endpoint"

    def test_concurrent_duplicate_creates_yield_exactly_one(self, store: MetadataStore) -> None:
        outcomes: list[str] = []
        lock = threading.Lock()

        def worker() -> None:
            try:
                _create(store, "race")
                result = "created"
            except ResourceInUse:
                result = "conflict"
            with lock:
                outcomes.append(result)

        threads = [threading.Thread(target=worker) for _ in range(8)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert outcomes.count("created") == 1 and outcomes.count("conflict") == 7

    def test_get_missing_is_not_found(self, store: MetadataStore) -> None:
        with pytest.raises(NotFound):
            store.get("training-job", "nope")

    def test_get_many_is_batched_and_skips_missing(self, store: MetadataStore) -> None:
        for n in ("a1", "a2", "a3"):
            _create(store, n)
        got = store.get_many("training-job", ["a1", "a3", "zz"])
        assert set(got) == {"a1", "a3"}

    def test_transition_is_compare_and_set(self, store: MetadataStore) -> None:
        _create(store, "t1")
        rec = store.transition(
            "training-job",
            "t1",
            from_states=["InProgress"],
            to_state="Completed",
            status_patch={"SecondaryStatus": "Completed", "x": 1},
        )
        assert rec.state == "Completed" and rec.version == 2
        assert rec.status == {"SecondaryStatus": "Completed", "x": 1}
        with pytest.raises(IllegalTransition):
            store.transition("training-job", "t1", from_states=["InProgress"], to_state="Stopping")
        assert store.get("training-job", "t1").state == "Completed"

    def test_expected_version_detects_lost_update(self, store: MetadataStore) -> None:
        _create(store, "v1")
        store.update_status("training-job", "v1", {"a": 1}, expected_version=1)
        with pytest.raises(ConcurrentModification):
            store.update_status("training-job", "v1", {"a": 2}, expected_version=1)
        assert store.get("training-job", "v1").status["a"] == 1

    def test_transition_missing_is_not_found(self, store: MetadataStore) -> None:
        with pytest.raises(NotFound):
            store.transition("training-job", "ghost", from_states=None, to_state="Failed")

    def test_list_filters_sorts_and_paginates(self, store: MetadataStore) -> None:
        for i in range(7):
            _create(store, f"job-{i}", state="Completed" if i % 2 else "InProgress")
            time.sleep(0.002)
        _create(store, "other-kind", kind="endpoint")
        page = store.list("training-job", ListQuery(limit=3, sort_by="created_at", sort_order="asc"))
        names = [r.name for r in page.items]
        assert names == ["job-0", "job-1", "job-2"] and page.next_token
        seen = list(names)
        while page.next_token:
            page = store.list(
                "training-job",
                ListQuery(limit=3, sort_by="created_at", sort_order="asc", page_token=page.next_token),
            )
            seen += [r.name for r in page.items]
        assert seen == [f"job-{i}" for i in range(7)]
        done = store.list("training-job", ListQuery(states=["Completed"], sort_by="name", sort_order="desc"))
        assert [r.name for r in done.items] == ["job-5", "job-3", "job-1"]
        contains = store.list("training-job", ListQuery(name_contains="B-4"))
        assert [r.name for r in contains.items] == ["job-4"]

    def test_list_name_contains_treats_wildcards_literally(self, store: MetadataStore) -> None:
        _create(store, "plain")
        assert store.list("training-job", ListQuery(name_contains="%")).items == []
        assert store.list("training-job", ListQuery(name_contains="_")).items == []

    def test_tampered_page_token_is_rejected(self, store: MetadataStore) -> None:
        for i in range(3):
            _create(store, f"p{i}")
        page = store.list("training-job", ListQuery(limit=1))
        assert page.next_token
        bad = page.next_token[:-2] + ("AA" if not page.next_token.endswith("AA") else "BB")
        with pytest.raises(InvalidSpec):
            store.list("training-job", ListQuery(limit=1, page_token=bad))
        with pytest.raises(InvalidSpec):
            store.list("training-job", ListQuery(limit=1, page_token="not-a-token"))

    def test_list_limit_is_capped(self, store: MetadataStore) -> None:
        for i in range(3):
            _create(store, f"c{i}")
        assert len(store.list("training-job", ListQuery(limit=10**9)).items) == 3

    def test_list_in_states_and_parent(self, store: MetadataStore) -> None:
        _create(store, "p", kind="tuning-job")
        _create(store, "c1", parent="p")
        _create(store, "c2", parent="p", state="Completed")
        _create(store, "c3")
        assert [r.name for r in store.list_in_states("training-job", ["InProgress"])] == ["c1", "c3"]
        assert [
            r.name for r in store.list("training-job", ListQuery(parent="p", sort_by="name", sort_order="asc")).items
        ] == ["c1", "c2"]

    def test_attempts_are_exactly_once(self, store: MetadataStore) -> None:
        _create(store, "att")
        store.start_attempt("training-job", "att", 1, handle={"pid": 1}, started_at=1.0)
        with pytest.raises(ResourceInUse):
            store.start_attempt("training-job", "att", 1, handle={"pid": 2}, started_at=2.0)
        store.update_attempt_handle("training-job", "att", 1, {"pid": 3})
        ended = store.end_attempt("training-job", "att", 1, state="Failed", ended_at=5.0, exit_code=1, reason="boom")
        assert ended.handle == {"pid": 3} and ended.exit_code == 1 and ended.reason == "boom"
        store.start_attempt("training-job", "att", 2, handle={}, started_at=6.0)
        assert [a.attempt for a in store.list_attempts("training-job", "att")] == [1, 2]
        with pytest.raises(NotFound):
            store.end_attempt("training-job", "att", 9, state="Failed", ended_at=1.0)

    def test_start_attempt_patches_status_atomically(self, store: MetadataStore) -> None:
        _create(store, "atomic")
        store.start_attempt(
            "training-job",
            "atomic",
            1,
            handle={},
            started_at=1.0,
            status_patch={"Attempt": 1, "AttemptActive": True},
            expected_version=1,
        )
        rec = store.get("training-job", "atomic")
        assert rec.status["AttemptActive"] is True and rec.version == 2
        with pytest.raises(ConcurrentModification):
            store.start_attempt(
                "training-job", "atomic", 2, handle={}, started_at=2.0, status_patch={"Attempt": 2}, expected_version=1
            )
        assert [a.attempt for a in store.list_attempts("training-job", "atomic")] == [1], "nothing half-written"
        with pytest.raises(ResourceInUse):
            store.start_attempt("training-job", "atomic", 1, handle={}, started_at=3.0, status_patch={"Attempt": 9})
        assert store.get("training-job", "atomic").status["Attempt"] == 1

    def test_logs_append_and_read_in_order(self, store: MetadataStore) -> None:
        _create(store, "lg")
        store.append_logs("training-job", "lg", 1, [(1.0, "a\n"), (2.0, "b\n")])
        store.append_logs("training-job", "lg", 1, [(3.0, "c\n")])
        chunks = store.read_logs("training-job", "lg")
        assert "".join(c.data for c in chunks) == "a\nb\nc\n"
        rest = store.read_logs("training-job", "lg", after_seq=chunks[0].seq)
        assert "".join(c.data for c in rest) == "b\nc\n"
        assert store.read_logs("training-job", "lg", after_seq=chunks[-1].seq) == []

    def test_tail_logs_returns_the_newest_chunks_in_order(self, store: MetadataStore) -> None:
        _create(store, "tail")
        store.append_logs("training-job", "tail", 1, [(float(i), f"{i}\n") for i in range(30)])
        assert [c.data for c in store.tail_logs("training-job", "tail", limit=3)] == ["27\n", "28\n", "29\n"]

    def test_log_offsets_and_metrics_commit_together(self, store: MetadataStore) -> None:
        _create(store, "off")
        assert store.log_offset("training-job", "off", 1) == 0
        store.append_logs(
            "training-job",
            "off",
            1,
            [(1.0, "acc=0.5\n")],
            end_offset=8,
            metrics=[MetricPoint(metric="acc", value=0.5, ts=1.0)],
        )
        store.append_logs("training-job", "off", 2, [(2.0, "x\n")], end_offset=2)
        assert store.log_offset("training-job", "off", 1) == 8
        assert store.log_offset("training-job", "off", 2) == 2
        assert [p.value for p in store.read_metrics("training-job", "off")] == [0.5]

    def test_metrics_and_final_values(self, store: MetadataStore) -> None:
        _create(store, "m")
        store.append_metrics(
            "training-job",
            "m",
            [
                MetricPoint(metric="loss", value=1.0, ts=1.0, step=0),
                MetricPoint(metric="loss", value=0.5, ts=2.0, step=1),
                MetricPoint(metric="acc", value=0.9, ts=2.0),
            ],
        )
        assert [p.value for p in store.read_metrics("training-job", "m", "loss")] == [1.0, 0.5]
        final = store.final_metrics("training-job", "m")
        assert [(p.metric, p.value) for p in final] == [("acc", 0.9), ("loss", 0.5)]

    def test_leases_exclude_other_owners_until_they_expire(self, store: MetadataStore) -> None:
        assert store.acquire_lease("controller", "a", ttl_s=60) is None
        assert store.acquire_lease("controller", "a", ttl_s=60) is None, "renewal by the holder"
        assert store.acquire_lease("controller", "b", ttl_s=60) == "a"
        store.release_lease("controller", "b")  # not the holder: no effect
        assert store.acquire_lease("controller", "b", ttl_s=60) == "a"
        store.release_lease("controller", "a")
        assert store.acquire_lease("controller", "b", ttl_s=0.05) is None
        time.sleep(0.1)
        assert store.acquire_lease("controller", "c", ttl_s=60) is None, "an expired lease can be taken over"
        assert store.acquire_lease("controller", "d", ttl_s=60, take_over_from="x") == "c"
        assert store.acquire_lease("controller", "d", ttl_s=60, take_over_from="c") is None, "from a known-dead holder"

    def test_history_appends_with_the_status_exactly_once(self, store: MetadataStore) -> None:
        _create(store, "ex", kind="execution", state="RUNNING")
        rec = store.get("execution", "ex")
        rec2, events = store.append_history(
            "execution",
            "ex",
            [("ExecutionStarted", {"input": "{}"}), ("PassStateEntered", {"name": "A"})],
            expected_version=rec.version,
            status_patch={"Machine": {"at": "A"}},
        )
        assert [(e.event_id, e.previous_event_id, e.type) for e in events] == [
            (1, 0, "ExecutionStarted"),
            (2, 1, "PassStateEntered"),
        ]
        assert rec2.status["Machine"] == {"at": "A"} and rec2.version == rec.version + 1
        with pytest.raises(ConcurrentModification):  # a runner that lost the race records nothing
            store.append_history("execution", "ex", [("PassStateExited", {})], expected_version=rec.version)
        assert [e.type for e in store.read_history("execution", "ex")] == ["ExecutionStarted", "PassStateEntered"]
        rec3, more = store.append_history(
            "execution",
            "ex",
            [("ExecutionSucceeded", {"output": "1"})],
            expected_version=rec2.version,
            to_state="SUCCEEDED",
        )
        assert rec3.state == "SUCCEEDED" and more[0].event_id == 3
        assert [e.event_id for e in store.read_history("execution", "ex", after_event_id=1)] == [2, 3]
        assert [e.event_id for e in store.read_history("execution", "ex", reverse=True, limit=2)] == [3, 2]
        assert [e.event_id for e in store.read_history("execution", "ex", reverse=True, after_event_id=3)] == [2, 1]
        assert store.read_history("execution", "ex")[0].details == {"input": "{}"}

    def test_delete_removes_everything(self, store: MetadataStore) -> None:
        _create(store, "gone")
        store.append_logs("training-job", "gone", 1, [(1.0, "x")])
        store.append_history("training-job", "gone", [("Noted", {})], expected_version=1)
        store.delete("training-job", "gone")
        with pytest.raises(NotFound):
            store.get("training-job", "gone")
        assert store.read_logs("training-job", "gone") == []
        assert store.read_history("training-job", "gone") == []
        _create(store, "gone")  # the name is free again

    # -- projects (kamado.core.projects) -------------------------------------------------------------------
    def test_create_records_the_current_project_else_default(self, store: MetadataStore) -> None:
        _create(store, "plain")
        with project_scope("a"):
            _create(store, "in-a")
        assert (
            store.create(
                kind="training-job", name="explicit", arn="x", state="InProgress", spec={}, status={}, project="b"
            ).project
            == "b"
        )
        assert store.get("training-job", "plain").project == "default"
        assert store.get("training-job", "in-a").project == "a"  # no project set: every project is visible
        assert store.get("training-job", "explicit").project == "b"
        with project_scope("a"), pytest.raises(InvalidSpec, match="project 'b'"):
            store.create(kind="training-job", name="x", arn="x", state="InProgress", spec={}, status={}, project="b")

    def test_a_project_sees_only_its_own_resources(self, store: MetadataStore) -> None:
        with project_scope("a"):
            _create(store, "job-a", state="InProgress")
        with project_scope("b"):
            _create(store, "job-b", state="InProgress")
            assert [r.name for r in store.list("training-job").items] == ["job-b"]
            assert [r.name for r in store.list_in_states("training-job", ["InProgress"])] == ["job-b"]
            assert set(store.get_many("training-job", ["job-a", "job-b"])) == {"job-b"}
            with pytest.raises(NotFound, match="in project 'b'") as missing:
                store.get("training-job", "job-a")
            with pytest.raises(NotFound) as absent:
                store.get("training-job", "no-such-job")
            # The same answer as for a name that does not exist: nothing leaks about other projects.
            assert str(missing.value).replace("job-a", "N") == str(absent.value).replace("no-such-job", "N")
            for write in (
                lambda: store.transition("training-job", "job-a", from_states=None, to_state="Stopping"),
                lambda: store.update_status("training-job", "job-a", {"x": 1}),
                lambda: store.delete("training-job", "job-a"),
                lambda: store.append_history("training-job", "job-a", [("E", {})], expected_version=1),
            ):
                with pytest.raises(NotFound):
                    write()
        assert store.get("training-job", "job-a").state == "InProgress"  # untouched by b's attempts
        assert store.get("training-job", "job-a").version == 1
        assert {r.name for r in store.list("training-job").items} == {"job-a", "job-b"}

    def test_a_project_cannot_read_another_projects_logs_metrics_or_attempts(self, store: MetadataStore) -> None:
        with project_scope("a"):
            _create(store, "secret-job")
        store.append_logs("training-job", "secret-job", 1, [(1.0, "private\n")])
        store.append_metrics("training-job", "secret-job", [MetricPoint("loss", 0.5, 1.0)])
        store.start_attempt("training-job", "secret-job", 1, handle={}, started_at=1.0)
        reads = (
            lambda: store.read_logs("training-job", "secret-job"),
            lambda: store.tail_logs("training-job", "secret-job"),
            lambda: store.read_metrics("training-job", "secret-job"),
            lambda: store.final_metrics("training-job", "secret-job"),
            lambda: store.list_attempts("training-job", "secret-job"),
            lambda: store.read_history("training-job", "secret-job"),
        )
        with project_scope("b"):
            for read in reads:
                with pytest.raises(NotFound):
                    read()
        with project_scope("a"):
            assert [c.data for c in store.read_logs("training-job", "secret-job")] == ["private\n"]
            assert [p.value for p in store.final_metrics("training-job", "secret-job")] == [0.5]

    def test_names_stay_unique_across_projects(self, store: MetadataStore) -> None:
        with project_scope("a"):
            _create(store, "shared-name")
        with project_scope("b"), pytest.raises(ResourceInUse):
            _create(store, "shared-name")
