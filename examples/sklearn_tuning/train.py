"""A SageMaker script-mode scikit-learn script made for tuning: it reads train and validation CSV channels and
prints the validation accuracy that a tuning job's MetricDefinition picks up."""

import argparse
import os

import joblib
import pandas as pd
from sklearn.ensemble import GradientBoostingClassifier


def load(channel: str) -> tuple:
    frame = pd.concat(pd.read_csv(os.path.join(channel, f)) for f in sorted(os.listdir(channel)))
    y = frame.pop("target").to_numpy()
    return frame.to_numpy(), y


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--learning-rate", type=float, default=0.1)
    parser.add_argument("--max-depth", type=int, default=3)
    parser.add_argument("--loss", type=str, default="log_loss")
    parser.add_argument("--n-estimators", type=int, default=20)
    parser.add_argument("--model-dir", default=os.environ.get("SM_MODEL_DIR"))
    args, _ = parser.parse_known_args()

    X, y = load(os.environ["SM_CHANNEL_TRAIN"])
    Xv, yv = load(os.environ["SM_CHANNEL_VALIDATION"])
    model = GradientBoostingClassifier(learning_rate=args.learning_rate, max_depth=args.max_depth, loss=args.loss,
                                       n_estimators=args.n_estimators, random_state=0)
    model.fit(X, y)
    print(f"validation:accuracy={model.score(Xv, yv):.4f}")
    joblib.dump(model, os.path.join(args.model_dir, "model.joblib"))
