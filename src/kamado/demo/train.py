"""A SageMaker script-mode training script, as in the public SageMaker scikit-learn examples.

It runs unchanged on SageMaker: hyperparameters arrive as arguments, data in SM_CHANNEL_*,
the model goes to SM_MODEL_DIR. The same file serves the model: the model server imports it (so the
training code under ``__main__`` does not run) and calls ``model_fn``.
"""

import argparse
import os

import joblib
import pandas as pd
from sklearn.metrics import accuracy_score
from sklearn.tree import DecisionTreeClassifier


def model_fn(model_dir):
    """Load the trained model for serving (SageMaker's scikit-learn container calls this)."""
    return joblib.load(os.path.join(model_dir, "model.joblib"))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--max_leaf_nodes", type=int, default=-1)
    parser.add_argument("--random_state", type=int, default=0)
    parser.add_argument("--model-dir", type=str, default=os.environ.get("SM_MODEL_DIR"))
    parser.add_argument("--train", type=str, default=os.environ.get("SM_CHANNEL_TRAIN"))
    parser.add_argument("--test", type=str, default=os.environ.get("SM_CHANNEL_TEST"))
    args = parser.parse_args()

    train = pd.concat(pd.read_csv(os.path.join(args.train, f), header=None) for f in sorted(os.listdir(args.train)))
    X, y = train.iloc[:, 1:], train.iloc[:, 0]
    clf = DecisionTreeClassifier(
        max_leaf_nodes=args.max_leaf_nodes if args.max_leaf_nodes > 0 else None,
        random_state=args.random_state,
    )
    clf.fit(X, y)
    print(f"train_accuracy={accuracy_score(y, clf.predict(X)):.4f}")

    if args.test:
        test = pd.concat(pd.read_csv(os.path.join(args.test, f), header=None) for f in sorted(os.listdir(args.test)))
        print(f"accuracy={accuracy_score(test.iloc[:, 0], clf.predict(test.iloc[:, 1:])):.4f}")

    joblib.dump(clf, os.path.join(args.model_dir, "model.joblib"))
    print("saved model.joblib")
