"""Chaos tests: ``make test`` runs the quick variants, ``make soak`` (``KAMADO_SOAK=1 pytest -m slow``) all.

Slow chaos tests are skipped unless asked for, so a plain ``pytest`` stays within the PR-CI budget.
"""

from __future__ import annotations

import os

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    wanted = bool(os.environ.get("KAMADO_SOAK")) or "slow" in (config.option.markexpr or "")
    if wanted:
        return
    skip = pytest.mark.skip(reason="soak-sized chaos test: run `make soak` (or KAMADO_SOAK=1 pytest -m slow)")
    here = os.path.dirname(__file__)
    for item in items:
        if item.get_closest_marker("slow") and str(item.path).startswith(here):
            item.add_marker(skip)
