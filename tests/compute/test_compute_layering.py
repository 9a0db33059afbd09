"""``compute`` sits on ``core`` only (CONVENTIONS.md, Shape 1): no capability, api, sdk or cli imports."""

from __future__ import annotations

import ast
from pathlib import Path

import kamado.compute

COMPUTE = Path(kamado.compute.__file__).parent
ALLOWED = ("kamado.compute", "kamado.core")


def _kamado_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("kamado")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("kamado"):
            found.add(node.module)
    return found


def test_compute_imports_only_core_and_itself() -> None:
    files = sorted(COMPUTE.glob("*.py"))
    assert files
    bad = {f"{path.name}: {mod}" for path in files for mod in _kamado_imports(path) if not mod.startswith(ALLOWED)}
    assert not bad


def test_shim_imports_no_kamado_module() -> None:
    assert _kamado_imports(COMPUTE / "shim.py") == set()
