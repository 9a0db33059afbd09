"""Write the iris dataset shipped with scikit-learn as CSV channels, train, and show the result."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

from rich.console import Console

import kamado


def write_iris(root: Path) -> dict[str, str]:
    import numpy as np
    from sklearn.datasets import load_iris
    from sklearn.model_selection import train_test_split

    X, y = load_iris(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
    paths = {}
    for name, (X_, y_) in {"train": (X_tr, y_tr), "test": (X_te, y_te)}.items():
        d = root / name
        d.mkdir(parents=True, exist_ok=True)
        np.savetxt(d / f"{name}.csv", np.column_stack([y_, X_]), delimiter=",", fmt="%g")
        paths[name] = str(d)
    return paths


def _serve(console: Console, est: kamado.Estimator, test_dir: Path) -> None:
    """Deploy the trained model behind an endpoint (the same script serves it), predict, clean up."""
    import numpy as np

    console.rule("hosting")
    console.print("deploying the model to an endpoint (router + one model-server instance)")
    started = time.monotonic()
    predictor = est.deploy(initial_instance_count=1, instance_type="local", endpoint_name=f"demo-iris-{os.getpid()}")
    console.print(f"endpoint {predictor.endpoint_name} InService in {time.monotonic() - started:.1f} s", markup=False)
    try:
        rows = np.loadtxt(next(test_dir.glob("*.csv")), delimiter=",")[:5]
        predictions = predictor.predict(rows[:, 1:].tolist())
        for features, label, predicted in zip(rows[:, 1:].tolist(), rows[:, 0], predictions, strict=True):
            console.print(f"  {features} -> predicted {predicted:g} (true {label:g})", markup=False)
    finally:
        predictor.delete_endpoint()
        predictor.delete_model()
        console.print("endpoint deleted")


def run_demo(console: Console) -> None:
    from kamado.cli.main import _show_job

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="kamado-demo-") as tmp:
        root = Path(tmp)
        src = root / "src"
        src.mkdir()
        shutil.copy(Path(__file__).with_name("train.py"), src / "train.py")
        channels = write_iris(root / "data")
        console.print("[bold]kamado demo[/]: training a DecisionTreeClassifier on iris (SageMaker script mode)")
        client = kamado.Client()
        console.print(f"server: {client.url}", markup=False)
        est = kamado.Estimator(
            entry_point="train.py",
            source_dir=src,
            hyperparameters={"max_leaf_nodes": 8},
            instance_type="local",
            metric_definitions=[
                {"Name": "train:accuracy", "Regex": "train_accuracy=([0-9.]+)"},
                {"Name": "test:accuracy", "Regex": "^accuracy=([0-9.]+)"},
            ],
            base_job_name="demo-iris",
            client=client,
        )
        est.fit(channels)
        assert est.latest_training_job is not None
        console.rule("result")
        _show_job(est.latest_training_job.describe(), "table")
        console.print(f"model_data: {est.model_data}", markup=False)
        _serve(console, est, root / "data" / "test")
        client.close()
    console.print(f"demo finished in {time.monotonic() - started:.1f} s")
