"""Script-mode training for the weekly retrain pipeline: a random forest on the iris CSV channel.

Prints ``validation:accuracy=...`` on a held-out split so the pipeline can gate the deployment on it, and
doubles as the inference script (``model_fn``; SageMaker's default input and output handling).
"""

import argparse
import os

import joblib
import pandas as pd
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import train_test_split


def model_fn(model_dir):
    return joblib.load(os.path.join(model_dir, "model.joblib"))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--n-estimators", type=int, default=20)
    parser.add_argument("--model-dir", default=os.environ.get("SM_MODEL_DIR"))
    parser.add_argument("--train", default=os.environ.get("SM_CHANNEL_TRAIN"))
    args, _ = parser.parse_known_args()
    frame = pd.concat(pd.read_csv(os.path.join(args.train, f)) for f in sorted(os.listdir(args.train)))
    y = frame.pop("target").to_numpy()
    x_train, x_val, y_train, y_val = train_test_split(frame.to_numpy(), y, test_size=0.3, random_state=0, stratify=y)
    model = RandomForestClassifier(n_estimators=args.n_estimators, random_state=0).fit(x_train, y_train)
    print(f"validation:accuracy={model.score(x_val, y_val):.4f}", flush=True)
    joblib.dump(model, os.path.join(args.model_dir, "model.joblib"))
