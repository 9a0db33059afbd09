"""One loopback Ray cluster (head + one worker node, 2 CPUs each) for the whole test session.

Starting a cluster costs about 30 s on a small machine, so every test module that only *uses* a cluster
(the executor contract, the parity suite) shares this one; it starts on first use and stops at the end
of the session. Tests that kill nodes (T8b, ``tests/scaleout/test_ray_chaos.py``) start their own.

A module sharing it must leave it as it found it: no task still running, every CPU free again.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator

import pytest

from kamado.testing.ray_cluster import RayCluster, ray_cluster

HAVE_RAY = importlib.util.find_spec("ray") is not None
NO_RAY_REASON = "the Ray executor needs ray: pip install 'kamado[ray]'"


@pytest.fixture(scope="session")
def ray_session_cluster() -> Iterator[RayCluster]:
    if not HAVE_RAY:
        pytest.skip(NO_RAY_REASON)
    with ray_cluster(workers=1, num_cpus=2) as cluster:
        yield cluster
