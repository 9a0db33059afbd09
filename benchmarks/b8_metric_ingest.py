"""B8 tracking & search: metric ingest through kamado against raw SQLite, and ListTrainingJobs over many jobs.

kamado has no metric-write endpoint: metrics travel as ``#kamado-metric`` lines on the job's stdout
(``kamado.log_metric``), which the reconciler parses into the store. So "10k single metric logs" is a job
that calls ``kamado.log_metric`` 10,000 times, and the figure is metrics/s from the job's first metric
(its own timestamp) to the moment all 10,000 are in the store (observed by polling the store's SQLite file
every few ms, read-only). "100 batches x 1,000" is a job that emits 100 bursts of 1,000 metrics.

Comparators, same run, interleaved: raw ``sqlite3`` inserting the same rows into a table shaped like kamado's
``metrics`` (WAL, ``synchronous=FULL`` as kamado opens SQLite) - one commit per row, one transaction for all
rows, and 100 transactions of 1,000 rows.

Search: N training-job rows (shaped like real ones) are put into the server's database before it starts;
then ``Client.list_training_jobs`` with NameContains / StatusEquals over HTTP, each interleaved with the
same query as raw SQL on the same file. Goal (PERFORMANCE.md): ingest >= 0.5x the raw floor; search over
100k jobs <= 1 s p99.
"""

from __future__ import annotations

import json
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import LocalServer, log, ratio, smoke, summarize, write_result

NAME = "b8_metric_ingest"
KIND = "training-job"
SCRIPT = """\
import os, time
from kamado import log_metric

bursts, per_burst = int(os.environ["SM_HP_BURSTS"]), int(os.environ["SM_HP_PER_BURST"])
t0 = time.time()
step = 0
for b in range(bursts):
    for i in range(per_burst):
        log_metric("loss", 1.0 / (step + 1), step=step)
        step += 1
print("B8_EMITTED", repr(t0), repr(time.time()), step, flush=True)
"""
METRICS_DDL = """
CREATE TABLE metrics (
    id INTEGER PRIMARY KEY AUTOINCREMENT, kind VARCHAR(64) NOT NULL, name VARCHAR(128) NOT NULL,
    metric VARCHAR(255) NOT NULL, value FLOAT NOT NULL, ts FLOAT NOT NULL, step INTEGER
);
CREATE INDEX ix_metrics_owner ON metrics (kind, name, metric, id);
"""
NAME_STEMS = (
    "xgboost-churn",
    "resnet-cifar",
    "bert-finetune",
    "sklearn-iris",
    "lgbm-ranker",
    "prophet-sales",
    "t5-summarize",
    "kmeans-segment",
    "catboost-fraud",
    "unet-seg",
)


# ---------------------------------------------------------------------------------------------- ingest


def _open_raw(path: Path) -> sqlite3.Connection:
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=FULL")
    con.executescript(METRICS_DDL)
    return con


def raw_per_commit(path: Path, n: int) -> float:
    """rows/s: one BEGIN IMMEDIATE ... COMMIT per row (how a per-call HTTP write would commit)."""
    con = _open_raw(path)
    sql = "INSERT INTO metrics (kind, name, metric, value, ts, step) VALUES (?, ?, ?, ?, ?, ?)"
    t0 = time.perf_counter()
    for i in range(n):
        con.execute("BEGIN IMMEDIATE")
        con.execute(sql, (KIND, "raw-job", "loss", 1.0 / (i + 1), time.time(), i))
        con.execute("COMMIT")
    dt = time.perf_counter() - t0
    con.close()
    return n / dt


def raw_batched(path: Path, batches: int, per_batch: int) -> float:
    """rows/s: ``batches`` transactions of ``per_batch`` rows each (executemany)."""
    con = _open_raw(path)
    sql = "INSERT INTO metrics (kind, name, metric, value, ts, step) VALUES (?, ?, ?, ?, ?, ?)"
    t0 = time.perf_counter()
    step = 0
    for _ in range(batches):
        now = time.time()
        rows = [(KIND, "raw-job", "loss", 1.0 / (step + i + 1), now, step + i) for i in range(per_batch)]
        con.execute("BEGIN IMMEDIATE")
        con.executemany(sql, rows)
        con.execute("COMMIT")
        step += per_batch
    dt = time.perf_counter() - t0
    con.close()
    return batches * per_batch / dt


class IngestJobs:
    def __init__(self, url: str, source_uri: str, db: Path) -> None:
        self.url, self.source_uri, self.db = url, source_uri, db
        self.n = 0

    def once(self, bursts: int, per_burst: int) -> dict[str, float]:
        from kamado import Client

        self.n += 1
        name = f"b8-ingest-{int(time.time())}-{self.n:03d}"
        total = bursts * per_burst
        req = {
            "TrainingJobName": name,
            "HyperParameters": {
                "sagemaker_program": json.dumps("train.py"),
                "sagemaker_submit_directory": json.dumps(self.source_uri),
                "bursts": json.dumps(bursts),
                "per_burst": json.dumps(per_burst),
            },
            "StoppingCondition": {"MaxRuntimeInSeconds": 600},
        }
        ro = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=30)
        try:
            with Client(self.url, autostart=False) as c:
                c.create_training_job(req)
                deadline = time.monotonic() + 300
                count = 0
                while count < total:
                    count = ro.execute(
                        "SELECT COUNT(*) FROM metrics WHERE kind = ? AND name = ?", (KIND, name)
                    ).fetchone()[0]
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"{name}: only {count} of {total} metrics stored after 300 s")
                    if count < total:
                        time.sleep(0.003)
                t_stored = time.time()
                first_ts, last_ts, steps = ro.execute(
                    "SELECT MIN(ts), MAX(ts), COUNT(DISTINCT step) FROM metrics WHERE kind = ? AND name = ?",
                    (KIND, name),
                ).fetchone()
                if steps != total:
                    raise RuntimeError(f"{name}: {steps} distinct steps stored, expected {total}")
                desc = c.wait_for_training_job(name, poll_s=0.05, timeout_s=120)
                if desc["TrainingJobStatus"] != "Completed":
                    raise RuntimeError(f"{name} ended {desc['TrainingJobStatus']}: {desc.get('FailureReason')}")
        finally:
            ro.close()
        window = t_stored - first_ts
        return {
            "metrics_per_s": total / window,
            "first_to_all_stored_s": window,
            "job_emit_s": last_ts - first_ts,
            "last_emitted_to_stored_ms": (t_stored - last_ts) * 1000.0,
        }


# ---------------------------------------------------------------------------------------------- search


def _job_rows(n: int, seed: int = 8) -> list[tuple[str, str, float]]:
    """(name, state, created_at) for n jobs: a realistic mix of names and terminal states."""
    rng = random.Random(seed)
    now = time.time() - n
    out = []
    for i in range(n):
        r = rng.random()
        state = "Completed" if r < 0.80 else "Failed" if r < 0.95 else "Stopped"
        out.append((f"{NAME_STEMS[i % len(NAME_STEMS)]}-{i:06d}", state, now + i + rng.random()))
    return out


def seed_jobs(db_url: str, db_path: Path, n: int) -> dict[str, Any]:
    """Put n training-job rows into the store before the server starts.

    The first rows go through ``SqlStore.create`` (what CreateTrainingJob does, timed); the rest copy the
    exact column shapes of those rows with one bulk ``executemany`` (100k single-row commits would take
    minutes and measure nothing B8 asks for). Only terminal states, so the reconciler has nothing to run.
    """
    from kamado.store.sql import SqlStore

    rows = _job_rows(n)
    via_store = min(n, 1000)
    store = SqlStore(db_url)
    status_of = {
        "Completed": {
            "SecondaryStatus": "Completed",
            "TrainingStartTime": 0.0,
            "TrainingEndTime": 1.0,
            "Attempt": 1,
            "AttemptActive": False,
            "FailureReason": None,
            "StopRequested": False,
            "SecondaryStatusTransitions": [
                {"Status": s, "StartTime": 0.0, "EndTime": 1.0, "StatusMessage": m}
                for s, m in (
                    ("Starting", "Starting the training job"),
                    ("Downloading", "Downloading input data"),
                    ("Training", "Training image download completed. Training in progress."),
                    ("Uploading", "Uploading generated training model"),
                    ("Completed", "Training job completed"),
                )
            ],
        },
    }
    status_of["Failed"] = {
        **status_of["Completed"],
        "SecondaryStatus": "Failed",
        "FailureReason": "AlgorithmError: ValueError: bad input (exit code 1)",
    }
    status_of["Stopped"] = {**status_of["Completed"], "SecondaryStatus": "Stopped"}

    def spec_of(name: str) -> dict[str, Any]:
        return {
            "TrainingJobName": name,
            "AlgorithmSpecification": {
                "TrainingInputMode": "File",
                "MetricDefinitions": [{"Name": "validation:auc", "Regex": "auc=([0-9.]+)"}],
            },
            "HyperParameters": {
                "sagemaker_program": '"train.py"',
                "max_depth": "6",
                "eta": "0.2",
                "sagemaker_submit_directory": '"kamado://trees/' + "0" * 64 + '"',
            },
            "InputDataConfig": [
                {
                    "ChannelName": "train",
                    "DataSource": {
                        "S3DataSource": {
                            "S3DataType": "S3Prefix",
                            "S3Uri": "kamado://trees/" + "1" * 64,
                            "S3DataDistributionType": "FullyReplicated",
                        }
                    },
                    "CompressionType": "None",
                    "RecordWrapperType": "None",
                }
            ],
            "OutputDataConfig": {},
            "ResourceConfig": {"InstanceType": "local", "InstanceCount": 1},
            "StoppingCondition": {"MaxRuntimeInSeconds": 86400},
            "Environment": {},
            "Tags": [],
        }

    t0 = time.perf_counter()
    for name, state, _created in rows[:via_store]:
        store.create(
            kind=KIND,
            name=name,
            arn=f"arn:aws:sagemaker:local:000000000000:training-job/{name}",
            state=state,
            spec=spec_of(name),
            status=status_of[state],
            tags={"team": "bench"},
        )
    store_rate = via_store / (time.perf_counter() - t0)
    store.close()
    con = sqlite3.connect(db_path, isolation_level=None)
    try:
        # Give the store-created rows their intended creation times too.
        con.execute("BEGIN IMMEDIATE")
        con.executemany(
            "UPDATE resources SET created_at = ?, updated_at = ? WHERE kind = ? AND name = ?",
            [(c, c, KIND, nm) for nm, _s, c in rows[:via_store]],
        )
        con.execute("COMMIT")
        bulk = []
        for name, state, created in rows[via_store:]:
            bulk.append(
                (
                    KIND,
                    name,
                    f"arn:aws:sagemaker:local:000000000000:training-job/{name}",
                    state,
                    json.dumps(spec_of(name), sort_keys=True),
                    json.dumps(status_of[state], sort_keys=True),
                    json.dumps({"team": "bench"}),
                    None,
                    1,
                    created,
                    created,
                )
            )
        t1 = time.perf_counter()
        con.execute("BEGIN IMMEDIATE")
        con.executemany(
            "INSERT INTO resources (kind, name, arn, state, spec, status, tags, parent, version, created_at, "
            "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            bulk,
        )
        con.execute("COMMIT")
        bulk_s = time.perf_counter() - t1
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        con.execute("ANALYZE")
        count = con.execute("SELECT COUNT(*) FROM resources WHERE kind = ?", (KIND,)).fetchone()[0]
    finally:
        con.close()
    return {
        "jobs": count,
        "via_store_create": via_store,
        "store_create_rows_per_s": round(store_rate, 1),
        "bulk_rows": n - via_store,
        "bulk_s": round(bulk_s, 2),
        "db_mb": round(db_path.stat().st_size / 2**20, 1),
    }


def search_queries(n: int) -> list[dict[str, Any]]:
    rare = f"-{n // 2:06d}"
    return [
        {"label": "NameContains common (10% match)", "params": {"NameContains": "churn"}},
        {"label": "NameContains one match (full scan)", "params": {"NameContains": rare}},
        {"label": "NameContains no match (full scan)", "params": {"NameContains": "no-such-job"}},
        {"label": "StatusEquals=Failed (15%)", "params": {"StatusEquals": "Failed"}},
        {
            "label": "StatusEquals=Stopped + NameContains=bert",
            "params": {"StatusEquals": "Stopped", "NameContains": "bert"},
        },
        {"label": "StatusEquals=InProgress (none)", "params": {"StatusEquals": "InProgress"}},
    ]


def raw_search(con: sqlite3.Connection, params: dict[str, Any], limit: int) -> int:
    """The statement the store issues for the same ListTrainingJobs (via SQLAlchemy's ilike on SQLite)."""
    sql = "SELECT * FROM resources WHERE kind = ?"
    args: list[Any] = [KIND]
    if params.get("StatusEquals"):
        sql += " AND state IN (?)"
        args.append(params["StatusEquals"])
    if params.get("NameContains"):
        pattern = params["NameContains"].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        sql += " AND lower(name) LIKE lower(?) ESCAPE '\\'"
        args.append(f"%{pattern}%")
    sql += " ORDER BY created_at DESC, id DESC LIMIT ?"
    args.append(limit + 1)
    rows = con.execute(sql, args).fetchall()
    # Decode what the API decodes for a summary, so the comparator does the same per-row work.
    for row in rows[:limit]:
        json.loads(row[6])
    return min(len(rows), limit)


# ------------------------------------------------------------------------------------------------- run


def run() -> tuple[Path, dict[str, Any]]:
    started = time.monotonic()
    tiny = smoke()
    reps = 2 if tiny else 5
    n_single = 200 if tiny else 10_000
    bulk_bursts, bulk_per = (2, 100) if tiny else (100, 1000)
    n_jobs = 2_000 if tiny else 100_000
    search_reps = 2 if tiny else 20
    page = 100
    with tempfile.TemporaryDirectory(prefix="kamado-b8-") as tmp:
        tmpdir = Path(tmp)
        home = tmpdir / "home"
        home.mkdir()
        db = home / "kamado.db"
        src = tmpdir / "src"
        src.mkdir()
        (src / "train.py").write_text(SCRIPT)
        log(f"{NAME}: seeding {n_jobs} job rows")
        seeding = seed_jobs(f"sqlite:///{db}", db, n_jobs)
        log(f"{NAME}: seeded {seeding}")
        server = LocalServer(home, env={"KAMADO_MAX_CPUS": "2"})
        with server:
            from kamado import Client

            client = Client(server.url, autostart=False)
            jobs = IngestJobs(server.url, client.upload_directory(src), db)
            raw_dir = tmpdir / "raw"
            raw_dir.mkdir()
            k = 0

            def raw_path() -> Path:
                nonlocal k
                k += 1
                return raw_dir / f"r{k}.db"

            # --- ingest, interleaved: kamado single, raw per-commit, raw one-txn | kamado bulk, raw 100x1000
            log(f"{NAME}: ingest warm-up, then {reps} interleaved repetitions")
            jobs.once(1, min(n_single, 1000))
            raw_per_commit(raw_path(), min(n_single, 1000))
            single: list[dict[str, float]] = []
            bulk: list[dict[str, float]] = []
            raw_commit: list[float] = []
            raw_one_txn: list[float] = []
            raw_bulk: list[float] = []
            for r in range(reps):
                single.append(jobs.once(1, n_single))
                raw_commit.append(raw_per_commit(raw_path(), n_single))
                raw_one_txn.append(raw_batched(raw_path(), 1, n_single))
                bulk.append(jobs.once(bulk_bursts, bulk_per))
                raw_bulk.append(raw_batched(raw_path(), bulk_bursts, bulk_per))
                log(
                    f"{NAME}: rep {r + 1}: kamado {single[-1]['metrics_per_s']:.0f}/s vs raw per-commit "
                    f"{raw_commit[-1]:.0f}/s; bulk kamado {bulk[-1]['metrics_per_s']:.0f}/s vs raw "
                    f"{raw_bulk[-1]:.0f}/s"
                )

            # --- search, interleaved per call: kamado over HTTP, then the same SQL raw
            queries = search_queries(n_jobs)
            ro = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
            lat: dict[str, list[float]] = {q["label"]: [] for q in queries}
            raw_lat: dict[str, list[float]] = {q["label"]: [] for q in queries}
            hits: dict[str, int] = {}
            log(f"{NAME}: search over {seeding['jobs']} jobs, {search_reps} x {len(queries)} queries")
            for rep in range(search_reps + 1):
                for q in queries:
                    t0 = time.perf_counter()
                    res = client.list_training_jobs(MaxResults=page, **q["params"])
                    dt = time.perf_counter() - t0
                    t1 = time.perf_counter()
                    raw_n = raw_search(ro, q["params"], page)
                    raw_dt = time.perf_counter() - t1
                    got = len(res["TrainingJobSummaries"])
                    if got != raw_n:
                        raise RuntimeError(f"{q['label']}: API returned {got} rows, raw SQL {raw_n}")
                    hits[q["label"]] = got
                    if rep:  # rep 0 is the warm-up
                        lat[q["label"]].append(dt * 1000.0)
                        raw_lat[q["label"]].append(raw_dt * 1000.0)
            ro.close()
            client.close()

    def col(rows: list[dict[str, float]], key: str) -> list[float]:
        return [r[key] for r in rows]

    single_rate = summarize(col(single, "metrics_per_s"), 1)
    bulk_rate = summarize(col(bulk, "metrics_per_s"), 1)
    commit_rate = summarize(raw_commit, 1)
    one_txn_rate = summarize(raw_one_txn, 1)
    bulk_raw_rate = summarize(raw_bulk, 1)
    all_lat = [x for v in lat.values() for x in v]
    all_raw = [x for v in raw_lat.values() for x in v]
    search = summarize(all_lat, 2)
    search_raw = summarize(all_raw, 2)
    figures = {
        "ingest_single": {
            "what": f"one job calling kamado.log_metric {n_single} times; metrics/s from its first "
            "metric to all stored",
            "metrics_per_s": single_rate,
            "first_to_all_stored_s": summarize(col(single, "first_to_all_stored_s"), 3),
            "job_emit_s": summarize(col(single, "job_emit_s"), 3),
            "last_emitted_to_stored_ms": summarize(col(single, "last_emitted_to_stored_ms"), 1),
        },
        "ingest_bulk": {
            "what": f"one job emitting {bulk_bursts} bursts x {bulk_per} metrics",
            "metrics_per_s": bulk_rate,
            "first_to_all_stored_s": summarize(col(bulk, "first_to_all_stored_s"), 3),
            "job_emit_s": summarize(col(bulk, "job_emit_s"), 3),
            "last_emitted_to_stored_ms": summarize(col(bulk, "last_emitted_to_stored_ms"), 1),
        },
        "search": {
            "what": f"Client.list_training_jobs(MaxResults={page}) over HTTP, {seeding['jobs']} jobs stored",
            "jobs": seeding["jobs"],
            "latency_ms": search,
            "by_query_ms": {label: {**summarize(v, 2), "rows": hits.get(label)} for label, v in lat.items()},
        },
        "seeding": seeding,
    }
    comparator = {
        "ingest": {
            "what": "raw sqlite3 into a table shaped like kamado's metrics (WAL, synchronous=FULL), same run",
            "per_commit_rows_per_s": commit_rate,
            "one_transaction_rows_per_s": one_txn_rate,
            f"{bulk_bursts}x{bulk_per}_rows_per_s": bulk_raw_rate,
        },
        "search": {
            "what": "the same SELECT the store issues, raw sqlite3 on the same file (read-only), same run",
            "latency_ms": search_raw,
            "by_query_ms": {label: summarize(v, 2) for label, v in raw_lat.items()},
        },
    }
    result = {
        "description": __doc__.strip().splitlines()[0],
        "method": (
            "Ingest: per repetition, interleaved: kamado 10k-metric job, raw per-commit, raw "
            "one-transaction, kamado 100x1000 job, raw 100x1000; one warm-up of each kind first. Stored "
            "counts observed by polling the store's SQLite file read-only every 3 ms. Search: each HTTP "
            "call is followed by the same SQL issued raw; one warm-up pass over all queries. "
            "OMP_NUM_THREADS=1."
        ),
        "load_generator": "this process (one keep-alive httpx client)",
        "config": {
            "reps": reps,
            "metrics_single": n_single,
            "bulk": [bulk_bursts, bulk_per],
            "jobs": n_jobs,
            "search_reps": search_reps,
            "page_size": page,
            "python": sys.executable,
        },
        "figures": figures,
        "comparator": comparator,
        "ratio": {
            "ingest_single_vs_raw_per_commit": ratio(single_rate["p50"], commit_rate["p50"]),
            "ingest_single_vs_raw_one_transaction": ratio(single_rate["p50"], one_txn_rate["p50"]),
            "ingest_bulk_vs_raw_batched": ratio(bulk_rate["p50"], bulk_raw_rate["p50"]),
            "search_p50_vs_raw": ratio(search["p50"], search_raw["p50"]),
            "search_p99_vs_raw": ratio(search["p99"], search_raw["p99"]),
            "meaning": "ingest: kamado rate / raw rate (higher is better); "
            "search: kamado latency / raw latency (lower is better)",
        },
        "goal": {
            "ingest_ge_half_floor": 0.5,
            "ingest_single_met": single_rate["p50"] >= 0.5 * commit_rate["p50"],
            "ingest_bulk_met": bulk_rate["p50"] >= 0.5 * bulk_raw_rate["p50"],
            "search_p99_le_ms": 1000.0,
            "search_jobs": seeding["jobs"],
            "search_met": search["p99"] <= 1000.0 and seeding["jobs"] >= 100_000,
        },
    }
    path = write_result(NAME, result, started)
    return path, json.loads(path.read_text())


if __name__ == "__main__":
    p, r = run()
    print(json.dumps({"path": str(p), "ratio": r["ratio"], "goal": r["goal"]}, indent=1))
