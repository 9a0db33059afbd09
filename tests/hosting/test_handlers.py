"""The SageMaker handler convention in process: defaults on a real fitted model, user handlers, script loading."""

from __future__ import annotations

import io
import json
import runpy
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import joblib
import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from kamado.hosting.handlers import (
    BadRequest,
    InferenceCodeError,
    InferenceHandlers,
    ModelLoadError,
    UnsupportedAccept,
    UnsupportedContentType,
    default_input_fn,
    default_output_fn,
    find_model_file,
    handlers_from_module,
    load_handlers,
)

ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]


@pytest.fixture(scope="module")
def iris_model() -> LogisticRegression:
    features, labels = load_iris(return_X_y=True)
    return LogisticRegression(max_iter=1000).fit(features, labels)


@pytest.fixture
def model_dir(tmp_path: Path, iris_model: LogisticRegression) -> Path:
    joblib.dump(iris_model, tmp_path / "model.joblib")
    return tmp_path


@pytest.fixture(autouse=True)
def isolated_imports() -> Iterator[None]:
    """Loading a script edits sys.path and sys.modules; undo it so tests cannot see each other's scripts."""
    path, modules = list(sys.path), set(sys.modules)
    yield
    sys.path[:] = path
    for name in set(sys.modules) - modules:
        del sys.modules[name]


def write_script(directory: Path, source: str, name: str = "inference.py") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(textwrap.dedent(source))
    return path


def npy(array: Any) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array))
    return buffer.getvalue()


def expected(model: LogisticRegression, rows: list[list[float]] = ROWS) -> list[int]:
    return [int(label) for label in model.predict(np.array(rows))]


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (json.dumps(ROWS).encode(), "application/json"),
        (json.dumps({"instances": ROWS}).encode(), "application/json; charset=utf-8"),
        (json.dumps({"inputs": ROWS}).encode(), "Application/JSON"),
        (b"5.1,3.5,1.4,0.2\n6.7, 3.0, 5.2, 2.3\n", "text/csv"),
        (npy(ROWS), "application/x-npy"),
    ],
)
def test_defaults_decode_every_supported_type(
    model_dir: Path, iris_model: LogisticRegression, body: bytes, content_type: str
) -> None:
    handlers = load_handlers(model_dir, {})
    payload, payload_type = handlers.invoke(handlers.load_model(model_dir), body, content_type, None)
    assert payload_type == "application/json"
    assert json.loads(payload) == expected(iris_model)


def test_defaults_encode_every_supported_accept(model_dir: Path, iris_model: LogisticRegression) -> None:
    handlers = load_handlers(model_dir, {})
    model, body = handlers.load_model(model_dir), json.dumps(ROWS).encode()
    as_csv = handlers.invoke(model, body, "application/json", "text/csv")
    as_npy = handlers.invoke(model, body, "application/json", "application/x-npy")
    listed = handlers.invoke(model, body, "application/json", "application/xml, text/csv;q=0.5")
    assert as_csv == ("".join(f"{label}\n" for label in expected(iris_model)).encode(), "text/csv")
    assert as_npy[1] == "application/x-npy"
    assert np.load(io.BytesIO(as_npy[0])).tolist() == expected(iris_model)
    assert listed[1] == "text/csv"


def test_default_accept_comes_from_the_environment(model_dir: Path) -> None:
    handlers = load_handlers(model_dir, {"SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "text/csv"})
    model = handlers.load_model(model_dir)
    assert handlers.invoke(model, b"1,2,3,4", "text/csv", "*/*")[1] == "text/csv"
    assert handlers.invoke(model, b"1,2,3,4", "text/csv", None)[1] == "text/csv"


def test_decoding_shapes() -> None:
    assert default_input_fn(b"1,2,3", "text/csv").shape == (1, 3)
    assert default_input_fn(b"1\n2\n", "text/csv").shape == (2, 1)
    assert default_input_fn(b'{"instances": [[1, 2]]}', "application/json").dtype.kind == "i"
    # Not numeric, so left for the model (a text pipeline takes strings; records stay records).
    assert default_input_fn(b'["a", "b"]', "application/json") == ["a", "b"]
    assert default_input_fn(b'[{"x": 1}]', "application/json") == [{"x": 1}]
    assert default_input_fn(b"[[1, 2], [3]]", "application/json") == [[1, 2], [3]]


def test_2d_prediction_as_csv_is_one_row_per_line() -> None:
    assert default_output_fn(np.array([[0.25, 0.75], [1.0, 0.0]]), "text/csv") == (b"0.25,0.75\n1.0,0.0\n", "text/csv")


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", "image/png; q=1"])
def test_unsupported_content_type_is_415_naming_the_accepted_ones(content_type: str) -> None:
    with pytest.raises(UnsupportedContentType) as caught:
        default_input_fn(b"x", content_type)
    assert caught.value.http_status == 415
    assert content_type.split(";")[0] in caught.value.message
    assert "application/json, text/csv, application/x-npy" in caught.value.message


@pytest.mark.parametrize(
    ("body", "content_type", "reason"),
    [
        (b"sepal_length,sepal_width\n1,2", "text/csv", "could not convert string to float"),
        (b"1,2\n3", "text/csv", "inhomogeneous"),
        (b"", "text/csv", "no rows"),
        (b"[[1, 2]", "application/json", "Expecting"),
        (b"[\x80]", "application/json", "decode"),
        (npy(np.array([{"a": 1}], dtype=object)), "application/x-npy", "allow_pickle=False"),
        (b"", "application/x-npy", "No data"),
    ],
)
def test_malformed_bodies_are_400_with_the_parse_error(body: bytes, content_type: str, reason: str) -> None:
    with pytest.raises(BadRequest) as caught:
        default_input_fn(body, content_type)
    assert caught.value.http_status == 400
    assert reason in caught.value.message


def test_unsupported_accept_is_406_naming_the_supported_ones() -> None:
    with pytest.raises(UnsupportedAccept) as caught:
        default_output_fn([1], "application/xml")
    assert caught.value.http_status == 406
    assert "'application/xml'" in caught.value.message
    assert "application/json, text/csv, application/x-npy" in caught.value.message
    with pytest.raises(UnsupportedAccept):
        default_output_fn(np.zeros((1, 1, 1)), "text/csv")


def test_user_handlers_replace_the_defaults(model_dir: Path) -> None:
    write_script(
        model_dir / "code",
        """
        import json

        import helpers  # a sibling module: the code directory is on sys.path

        def model_fn(model_dir):
            return {"dir": model_dir}

        def input_fn(request_body, request_content_type):
            assert request_content_type == "text/plain; charset=utf-8"
            return request_body.decode().split()

        def predict_fn(input_data, model):
            return [helpers.shout(word) for word in input_data]

        def output_fn(prediction, accept):
            return json.dumps({"words": prediction, "accept": accept})
        """,
    )
    write_script(model_dir / "code", "def shout(word):\n    return word.upper() + '!'\n", name="helpers.py")
    handlers = load_handlers(model_dir, {})
    model = handlers.load_model(model_dir)
    assert model == {"dir": str(model_dir)}
    payload, payload_type = handlers.invoke(model, b"hi there", "text/plain; charset=utf-8", "*/*")
    assert json.loads(payload) == {"words": ["HI!", "THERE!"], "accept": "application/json"}
    assert payload_type == "application/json"


def test_handlers_taking_context_get_one(model_dir: Path) -> None:
    write_script(
        model_dir / "code",
        """
        def model_fn(model_dir, context):
            return context.system_properties["model_dir"]

        def predict_fn(input_data, model, context):
            return [model == context.model_dir]
        """,
    )
    handlers = load_handlers(model_dir, {})
    model = handlers.load_model(model_dir)
    assert model == str(model_dir)
    assert handlers.invoke(model, b"[1]", "application/json", None) == (b"[true]", "application/json")


def test_transform_fn_replaces_the_chain(model_dir: Path) -> None:
    write_script(
        model_dir / "code",
        """
        def transform_fn(model, request_body, content_type, accept):
            if content_type == "text/plain":
                return request_body.upper()
            return f"{len(request_body)} bytes as {accept}", "text/x-summary"
        """,
    )
    handlers = load_handlers(model_dir, {})
    model = handlers.load_model(model_dir)  # the default model_fn still loads model.joblib
    assert isinstance(model, LogisticRegression)
    assert handlers.invoke(model, b"abc", "text/plain", "text/plain") == (b"ABC", "text/plain")
    assert handlers.invoke(model, b"abcd", "application/json", None) == (
        b"4 bytes as application/json",
        "text/x-summary",
    )


def test_transform_fn_with_input_fn_is_refused(model_dir: Path) -> None:
    module = SimpleNamespace(transform_fn=lambda m, b, c, a: b, input_fn=lambda b, c: b)
    with pytest.raises(InferenceCodeError, match="transform_fn and input_fn"):
        handlers_from_module(module, model_dir)


def test_output_fn_must_return_bytes_or_str(model_dir: Path) -> None:
    module = SimpleNamespace(output_fn=lambda prediction, accept: {"oops": 1})
    handlers = handlers_from_module(module, model_dir)
    with pytest.raises(TypeError, match="returned dict"):
        handlers.invoke(handlers.load_model(model_dir), b"[[1, 2, 3, 4]]", "application/json", None)


def test_training_script_doubles_as_inference_script(tmp_path: Path) -> None:
    """As in SageMaker's scikit-learn container: the same file trains under __main__ and serves when imported."""
    code, model_dir = tmp_path / "code", tmp_path / "model"
    model_dir.mkdir()
    script = write_script(
        code,
        """
        import os
        import sys

        import joblib

        from features import FEATURES

        def model_fn(model_dir):
            return joblib.load(os.path.join(model_dir, "clf.pkl"))

        if __name__ == "__main__":
            from sklearn.datasets import load_iris
            from sklearn.tree import DecisionTreeClassifier

            X, y = load_iris(return_X_y=True)
            joblib.dump(DecisionTreeClassifier(random_state=0).fit(X[:, FEATURES], y), sys.argv[1] + "/clf.pkl")
            open(sys.argv[1] + "/trained", "w").close()
        """,
        name="train.py",
    )
    write_script(code, "FEATURES = [2, 3]\n", name="features.py")
    sys.path.insert(0, str(code))
    argv, sys.argv = sys.argv, [str(script), str(model_dir)]
    try:
        runpy.run_path(str(script), run_name="__main__")
    finally:
        sys.argv = argv
    (model_dir / "trained").unlink()
    env = {"SAGEMAKER_PROGRAM": "train.py", "SAGEMAKER_SUBMIT_DIRECTORY": str(code)}
    handlers = load_handlers(model_dir, env)
    payload, _ = handlers.invoke(handlers.load_model(model_dir), b"1.4,0.2\n5.2,2.3", "text/csv", None)
    assert json.loads(payload) == [0, 2]
    assert not (model_dir / "trained").exists()  # importing did not train again


def test_missing_explicit_program_is_a_clear_error(model_dir: Path) -> None:
    with pytest.raises(InferenceCodeError, match=r"SAGEMAKER_PROGRAM='serve\.py' was not found"):
        load_handlers(model_dir, {"SAGEMAKER_PROGRAM": "serve.py"})


def test_missing_default_program_means_defaults(model_dir: Path) -> None:
    assert load_handlers(model_dir, {}) == InferenceHandlers()


def test_model_file_choice(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("")
    with pytest.raises(ModelLoadError, match=r"No model file .*found: notes\.txt"):
        find_model_file(tmp_path)
    (tmp_path / "a.pkl").write_bytes(b"")
    assert find_model_file(tmp_path) == tmp_path / "a.pkl"
    (tmp_path / "b.PICKLE").write_bytes(b"")
    with pytest.raises(ModelLoadError, match=r"Several model files .*\(a\.pkl, b\.PICKLE\)"):
        find_model_file(tmp_path)
    (tmp_path / "model.joblib").write_bytes(b"")
    assert find_model_file(tmp_path) == tmp_path / "model.joblib"
    with pytest.raises(ModelLoadError, match="does not exist"):
        find_model_file(tmp_path / "missing")
