"""A SageMaker script-mode scikit-learn training script, written as in the public SageMaker examples
(argparse hyperparameters, SM_* variables, a CSV channel, joblib model in SM_MODEL_DIR).
It runs unchanged on SageMaker's scikit-learn container and on kamado."""

import argparse
import json
import os

import joblib
import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestClassifier


def model_fn(model_dir):
    """Used by SageMaker's inference toolkit to load the model for serving."""
    return joblib.load(os.path.join(model_dir, "model.joblib"))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--n-estimators", type=int, default=10)
    parser.add_argument("--min-samples-leaf", type=int, default=3)
    parser.add_argument("--features", type=str, default="all")
    parser.add_argument("--model-dir", type=str, default=os.environ["SM_MODEL_DIR"])
    parser.add_argument("--train", type=str, default=os.environ["SM_CHANNEL_TRAIN"])
    parser.add_argument("--output-data-dir", type=str, default=os.environ["SM_OUTPUT_DATA_DIR"])
    args, _ = parser.parse_known_args()

    print("hosts:", json.loads(os.environ["SM_HOSTS"]), "current:", os.environ["SM_CURRENT_HOST"])
    files = [os.path.join(args.train, f) for f in sorted(os.listdir(args.train)) if f.endswith(".csv")]
    if not files:
        raise ValueError(f"There are no CSV files in {args.train}")
    frame = pd.concat(pd.read_csv(f) for f in files)
    y = frame.pop("target").to_numpy()
    X = frame.to_numpy()
    model = RandomForestClassifier(n_estimators=args.n_estimators, min_samples_leaf=args.min_samples_leaf,
                                   random_state=0, n_jobs=1)
    model.fit(X, y)
    accuracy = float(np.mean(model.predict(X) == y))
    print(f"train-accuracy: {accuracy:.4f};")
    joblib.dump(model, os.path.join(args.model_dir, "model.joblib"))
    with open(os.path.join(args.output_data_dir, "summary.json"), "w") as f:
        json.dump({"rows": len(y), "accuracy": accuracy}, f)
