"""SageMaker's inference-handler convention, so a script written for SageMaker's scikit-learn container serves
unchanged: ``model_fn``, ``input_fn``, ``predict_fn`` and ``output_fn`` (or ``transform_fn``) from the user's
script, and that container's defaults for whatever the script leaves out.

Only the model server imports this module. It runs user code and unpickles user models, so it stays free of
the control plane (no ``kamado.store``, ``kamado.api`` or ``kamado.training``).
"""

from __future__ import annotations

import importlib.util
import inspect
import io
import json
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from kamado.core.errors import KamadoError

JSON = "application/json"
CSV = "text/csv"
NPY = "application/x-npy"
DEFAULT_PROGRAM = "inference.py"
MODEL_SUFFIXES = (".joblib", ".pkl", ".pickle")
PREFERRED_MODEL_FILE = "model.joblib"

#: Handler name -> how many arguments SageMaker passes it; one more means the script wants ``context`` too.
ARITY = {"model_fn": 1, "input_fn": 2, "predict_fn": 2, "output_fn": 2, "transform_fn": 4}


class InvocationError(KamadoError):
    """A request the default handlers refuse; the server answers with ``http_status``, not a 500."""


class BadRequest(InvocationError):
    code = "BadRequest"
    http_status = 400


class UnsupportedContentType(InvocationError):
    code = "UnsupportedMediaType"
    http_status = 415


class UnsupportedAccept(InvocationError):
    code = "NotAcceptable"
    http_status = 406


class InferenceCodeError(KamadoError):
    """The inference code is misconfigured (a missing program, clashing handlers): nothing can be served."""

    code = "InferenceCodeError"


class ModelLoadError(KamadoError):
    """The default ``model_fn`` cannot tell which file is the model."""

    code = "ModelLoadError"


@dataclass(frozen=True)
class InferenceContext:
    """What the newer handler signatures receive as ``context``: MMS's ``Context``, cut to what kamado knows."""

    model_dir: str

    @property
    def system_properties(self) -> dict[str, Any]:
        return {"model_dir": self.model_dir, "gpu_id": None}


def media_type(header: str) -> str:
    """``application/json; charset=utf-8`` -> ``application/json``: parameters never change the decoder."""
    return header.split(";", 1)[0].strip().lower()


# --- defaults (SageMaker's scikit-learn container) ----------------------------------------------------------


def find_model_file(model_dir: Path) -> Path:
    if not model_dir.is_dir():
        raise ModelLoadError(f"Model directory {model_dir} does not exist.")
    preferred = model_dir / PREFERRED_MODEL_FILE
    if preferred.is_file():
        return preferred
    files = sorted(p for p in model_dir.iterdir() if p.is_file())
    candidates = [p for p in files if p.suffix.lower() in MODEL_SUFFIXES]
    if len(candidates) == 1:
        return candidates[0]
    hint = "or define model_fn(model_dir) in the inference script"
    if not candidates:
        found = ", ".join(p.name for p in files) or "nothing"
        raise ModelLoadError(
            f"No model file in {model_dir} (found: {found}): expected one *.joblib, *.pkl or *.pickle file; "
            f"save the model with joblib.dump(model, os.path.join(model_dir, 'model.joblib')) {hint}."
        )
    names = ", ".join(p.name for p in candidates)
    raise ModelLoadError(
        f"Several model files in {model_dir} ({names}): keep one, name one {PREFERRED_MODEL_FILE}, {hint}."
    )


def default_model_fn(model_dir: str) -> Any:
    import joblib  # only the default needs it; a custom model_fn may load anything

    return joblib.load(find_model_file(Path(model_dir)))


def _to_array(data: list[Any]) -> Any:
    """Numeric nested lists become arrays; anything else (strings, records, ragged rows) stays as sent."""
    try:
        array = np.asarray(data)
    except ValueError:
        return data
    return array if array.dtype.kind in "biufc" else data


def _decode_json(body: bytes) -> Any:
    data = json.loads(body)
    if isinstance(data, dict):
        data = data.get("instances", data.get("inputs", data))
    return _to_array(data) if isinstance(data, list) else data


def _decode_csv(body: bytes) -> np.ndarray:
    rows = [line.split(",") for line in body.decode("utf-8").splitlines() if line.strip()]
    if not rows:
        raise ValueError("the body has no rows")
    return np.array(rows, dtype=float)


def _decode_npy(body: bytes) -> np.ndarray:
    return np.load(io.BytesIO(body), allow_pickle=False)


_DECODERS: dict[str, Callable[[bytes], Any]] = {JSON: _decode_json, CSV: _decode_csv, NPY: _decode_npy}


def default_input_fn(request_body: bytes, request_content_type: str) -> Any:
    media = media_type(request_content_type)
    decoder = _DECODERS.get(media)
    if decoder is None:
        raise UnsupportedContentType(
            f"Content type {media!r} is not supported by the default input_fn; send one of {', '.join(_DECODERS)}, "
            "or define input_fn(request_body, request_content_type) in the inference script."
        )
    try:
        return decoder(request_body)
    except (ValueError, EOFError, OSError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise BadRequest(f"Could not parse the {media} body: {exc}") from exc


def default_predict_fn(input_data: Any, model: Any) -> Any:
    return model.predict(input_data)


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):  # numpy arrays and scalars, pandas Series
        return value.tolist()
    if hasattr(value, "to_numpy"):  # pandas DataFrame
        return value.to_numpy().tolist()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _encode_json(prediction: Any) -> bytes:
    if isinstance(prediction, np.ndarray):
        prediction = prediction.tolist()
    return json.dumps(prediction, default=_json_default).encode()


def _encode_csv(prediction: Any) -> bytes:
    array = np.asarray(prediction)
    if array.ndim > 2:
        raise UnsupportedAccept(
            f"A prediction with {array.ndim} dimensions has no {CSV} form; ask for {JSON} or {NPY}."
        )
    values = array.tolist()
    if array.ndim == 0:
        lines = [str(values)]
    elif array.ndim == 1:
        lines = [str(value) for value in values]
    else:
        lines = [",".join(map(str, row)) for row in values]
    return ("\n".join(lines) + "\n").encode()


def _encode_npy(prediction: Any) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(prediction), allow_pickle=False)
    return buffer.getvalue()


_ENCODERS: dict[str, Callable[[Any], bytes]] = {JSON: _encode_json, CSV: _encode_csv, NPY: _encode_npy}


def choose_accept(accept: str) -> str:
    """The first supported type in an Accept list (quality values ignored); a wildcard means JSON."""
    for item in accept.split(","):
        media = media_type(item)
        if media in _ENCODERS:
            return media
        if media == "*/*":
            return JSON
    raise UnsupportedAccept(
        f"Accept {accept!r} is not supported by the default output_fn; ask for one of {', '.join(_ENCODERS)} "
        "(or */*), or define output_fn(prediction, accept) in the inference script."
    )


def default_output_fn(prediction: Any, accept: str) -> tuple[bytes, str]:
    media = choose_accept(accept)
    return _ENCODERS[media](prediction), media


# --- the user's script ---------------------------------------------------------------------------------------


def code_dir(model_dir: Path, env: Mapping[str, str]) -> Path:
    submit_dir = env.get("SAGEMAKER_SUBMIT_DIRECTORY")
    return Path(submit_dir) if submit_dir else model_dir / "code"


def resolve_program(model_dir: Path, env: Mapping[str, str]) -> Path | None:
    """The inference script, or None when there is none and none was asked for (then the defaults serve)."""
    explicit = env.get("SAGEMAKER_PROGRAM") or None
    program = code_dir(model_dir, env) / (explicit or DEFAULT_PROGRAM)
    if program.is_file():
        return program
    if explicit:
        source = "SAGEMAKER_SUBMIT_DIRECTORY" if env.get("SAGEMAKER_SUBMIT_DIRECTORY") else "<model-dir>/code"
        raise InferenceCodeError(
            f"SAGEMAKER_PROGRAM={explicit!r} was not found at {program} (the code directory comes from {source}); "
            "fix the program name, ship the script with the model, or unset SAGEMAKER_PROGRAM to use the defaults."
        )
    return None


def import_program(program: Path, directory: Path) -> ModuleType:
    """Import (not run) the script, so a training script's ``if __name__ == "__main__":`` block stays idle,
    with its directory first on ``sys.path`` so its sibling modules import."""
    sys.path.insert(0, str(directory))
    name = program.stem
    spec = importlib.util.spec_from_file_location(name, program)
    if spec is None or spec.loader is None:
        raise InferenceCodeError(
            f"Cannot import {program} as a Python module; the inference script must be a .py file."
        )
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # pickles of classes defined in the script find them by module name
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def _takes_context(fn: Callable[..., Any], arity: int) -> bool:
    try:
        return len(inspect.signature(fn).parameters) == arity + 1
    except (TypeError, ValueError):  # builtins and some C callables have no signature
        return False


def _user_handler(module: Any, name: str, context: InferenceContext) -> Callable[..., Any] | None:
    fn = getattr(module, name, None)
    if fn is None:
        return None
    if not callable(fn):
        raise InferenceCodeError(f"{name} in the inference script is a {type(fn).__name__}, not a function.")
    if not _takes_context(fn, ARITY[name]):
        return fn
    return lambda *args: fn(*args, context)


@dataclass(frozen=True)
class InferenceHandlers:
    """The handler chain for one model, resolved once at startup so an invocation does no lookups."""

    model_fn: Callable[[str], Any] = default_model_fn
    input_fn: Callable[[bytes, str], Any] = default_input_fn
    predict_fn: Callable[[Any, Any], Any] = default_predict_fn
    output_fn: Callable[[Any, str], Any] = default_output_fn
    transform_fn: Callable[[Any, bytes, str, str], Any] | None = None
    #: Used for a missing or ``*/*`` Accept (``SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT``).
    default_accept: str = JSON

    def load_model(self, model_dir: str | Path) -> Any:
        return self.model_fn(str(model_dir))

    def invoke(self, model: Any, body: bytes, content_type: str | None, accept: str | None) -> tuple[bytes, str]:
        """Body and content type of the response. A missing Content-Type is taken as JSON."""
        content_type = content_type or JSON
        if not accept or accept == "*/*":
            accept = self.default_accept
        if self.transform_fn is not None:
            result = self.transform_fn(model, body, content_type, accept)
        else:
            result = self.output_fn(self.predict_fn(self.input_fn(body, content_type), model), accept)
        return as_response(result, accept)


def as_response(result: Any, accept: str) -> tuple[bytes, str]:
    """A handler may return the body alone (its type is then the Accept) or a ``(body, content_type)`` pair."""
    body, content_type = result if isinstance(result, tuple) and len(result) == 2 else (result, accept)
    if isinstance(body, str):
        body = body.encode()
    elif isinstance(body, bytearray | memoryview):
        body = bytes(body)
    elif not isinstance(body, bytes):
        raise TypeError(
            f"output_fn/transform_fn returned {type(body).__name__}; return bytes or str, "
            "or a (body, content_type) tuple."
        )
    return body, str(content_type)


def handlers_from_module(module: Any, model_dir: str | Path, default_accept: str = JSON) -> InferenceHandlers:
    """The user's handlers where the script defines them, the defaults elsewhere. ``module`` may be None."""
    context = InferenceContext(model_dir=str(model_dir))
    found = {name: _user_handler(module, name, context) for name in ARITY}
    user = {name: fn for name, fn in found.items() if fn is not None}
    clashing = sorted(set(user) & {"input_fn", "predict_fn", "output_fn"})
    if "transform_fn" in user and clashing:
        raise InferenceCodeError(
            f"The inference script defines transform_fn and {', '.join(clashing)}; transform_fn replaces "
            "input_fn, predict_fn and output_fn, so define either it or them."
        )
    return InferenceHandlers(default_accept=default_accept, **user)


def load_handlers(model_dir: str | Path, env: Mapping[str, str]) -> InferenceHandlers:
    """Find and import the inference script that ``env`` names (SageMaker's variables) and build its chain."""
    program = resolve_program(Path(model_dir), env)
    module = import_program(program, code_dir(Path(model_dir), env)) if program is not None else None
    return handlers_from_module(module, model_dir, env.get("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT") or JSON)
