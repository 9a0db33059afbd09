"""Structure rules that must not rot: layer direction, the public API, module size."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import kamado

SRC = Path(kamado.__file__).parent

#: What each package may import from kamado. ``core`` is the bottom; capabilities sit on the shared
#: layers; only ``api`` wires capabilities to HTTP. ``sdk``/``cli`` talk HTTP and import no server code.
ALLOWED: dict[str, set[str]] = {
    "core": {"core"},  # loop.py, errors, names, settings, clock, lifecycle
    "store": {"core", "store"},
    "artifacts": {"core", "artifacts"},
    "compute": {"core", "compute"},
    "training": {"core", "store", "artifacts", "compute", "training", "tracking"},
    "tuning": {"core", "store", "training", "tuning"},
    # security: the router checks InvokeEndpoint tokens against the same tables (hosting/router_auth.py).
    "hosting": {"core", "store", "artifacts", "compute", "training", "security", "hosting"},
    "transform": {"core", "store", "artifacts", "compute", "training", "hosting", "transform"},
    "processing": {"core", "store", "artifacts", "compute", "training", "processing"},
    "functions": {"core", "store", "artifacts", "compute", "functions"},
    "pipelines": {
        "core",
        "store",
        "artifacts",
        "compute",
        "training",
        "tuning",
        "hosting",
        "transform",
        "processing",
        "functions",
        "pipelines",
    },
    "security": {"core", "store", "security"},
    "web": {"core", "web"},
    "api": {
        "core",
        "store",
        "artifacts",
        "compute",
        "training",
        "tuning",
        "hosting",
        "transform",
        "processing",
        "functions",
        "pipelines",
        "security",
        "web",
        "api",
        "__init__",
    },
    "sdk": {"core", "sdk", "artifacts"},
    "cli": {"core", "sdk", "cli", "demo", "api"},
    "demo": {"core", "sdk", "cli", "__init__", "demo"},
    "testing": {"core", "store", "artifacts", "compute", "testing"},
}


def _kamado_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for name in names:
            parts = name.split(".")
            if parts[0] == "kamado":
                found.add(parts[1] if len(parts) > 1 else "__init__")
    return found


def test_layers_import_in_one_direction() -> None:
    violations = []
    for package, allowed in ALLOWED.items():
        for path in (SRC / package).rglob("*.py"):
            bad = _kamado_imports(path) - allowed
            if bad:
                violations.append(f"{path.relative_to(SRC)} imports {sorted(bad)}")
    assert violations == []


def test_cli_server_import_is_lazy() -> None:
    """`kamado.cli` may start the server, but only inside the `server` command."""
    tree = ast.parse((SRC / "cli" / "main.py").read_text())
    top_level = {n.module for n in tree.body if isinstance(n, ast.ImportFrom) and n.module}
    assert not any(m.startswith("kamado.api") for m in top_level)


def test_public_api_is_pinned() -> None:
    assert kamado.__all__ == sorted(kamado.__all__)
    assert kamado.__all__ == [
        "CategoricalParameter",
        "Client",
        "ContinuousParameter",
        "Estimator",
        "Function",
        "HyperparameterTuner",
        "IllegalTransition",
        "IntegerParameter",
        "InvalidSpec",
        "KamadoError",
        "Model",
        "ModelError",
        "NotFound",
        "Predictor",
        "ProcessingInput",
        "ProcessingOutput",
        "Processor",
        "ResourceInUse",
        "SKLearn",
        "ScriptProcessor",
        "TrainingInput",
        "TrainingJob",
        "TrainingJobFailed",
        "Transformer",
        "TuningJobFailed",
        "__version__",
        "deserializers",
        "log_metric",
        "map",
        "serializers",
    ]
    for name in kamado.__all__:
        assert getattr(kamado, name) is not None


def test_import_kamado_is_light() -> None:
    """A training script that only calls kamado.log_metric must not pay for the SDK or the server."""
    code = (
        "import sys, kamado; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('httpx', 'fastapi', 'sqlalchemy')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_modules_stay_readable() -> None:
    big = [f"{p.relative_to(SRC)}: {n}" for p in SRC.rglob("*.py") if (n := len(p.read_text().splitlines())) > 800]
    assert big == [], "split modules over 800 lines by responsibility"
