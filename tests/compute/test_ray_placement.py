"""Where the Ray executor keeps tasks the control plane reaches at 127.0.0.1 (model servers, function workers)."""

from __future__ import annotations

from kamado.compute.ray_bridge import pin_to_driver_node
from kamado.compute.taskspec import TaskSpec


def _node(address: str) -> dict[str, object]:
    return {"NodeManagerAddress": address, "Alive": True}


def test_a_single_host_cluster_places_anywhere() -> None:
    loopback = {"head": _node("127.0.0.1"), "worker": _node("127.0.0.1")}
    assert pin_to_driver_node(loopback, "head") is False, "every node is reachable at 127.0.0.1"
    assert pin_to_driver_node({"only": _node("10.0.0.5")}, "only") is False


def test_a_multi_host_cluster_keeps_them_on_the_servers_node() -> None:
    nodes = {"head": _node("10.0.0.5"), "worker-a": _node("10.0.0.6"), "worker-b": _node("10.0.0.5")}
    assert pin_to_driver_node(nodes, "head") is True
    assert pin_to_driver_node(nodes, "worker-a") is True


def test_tasks_default_to_anywhere_and_old_specs_still_load() -> None:
    spec = TaskSpec(task_id="t", command=["true"], env={}, workdir="/")
    assert spec.placement == "any"
    stored = spec.to_json()
    del stored["placement"]  # a spec recorded before the field existed
    assert TaskSpec.from_json(stored).placement == "any"
