"""SageMaker instance types, as resources a task reserves on this machine.

Users keep writing ``instance_type="ml.m5.xlarge"`` as they would for SageMaker; kamado turns it into a
reservation of vCPUs, memory and GPUs against the executor's capacity, so a tuning job with
``max_parallel_jobs=8`` of ``ml.m5.xlarge`` runs as many at once as this machine holds, and queues the rest.
Common types come from an explicit table (AWS's published sizes); any other well-formed
``ml.<family>.<size>`` is derived by rule, so a new family does not need a kamado release.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from kamado.compute.taskspec import Resources
from kamado.core.errors import InvalidSpec

FIELD = "ResourceConfig.InstanceType"
_GIB = 1024


@dataclass(frozen=True, kw_only=True)
class InstanceType:
    name: str
    vcpus: int
    #: ``None``: no memory reservation (``local``: use what the machine has, like SageMaker local mode).
    memory_mb: int | None
    gpus: int = 0

    def resources(self) -> Resources:
        return Resources(cpus=float(self.vcpus), memory_mb=self.memory_mb, gpus=self.gpus)


def _family(family: str, sizes: Mapping[str, tuple[int, float, int]]) -> dict[str, InstanceType]:
    return {
        f"ml.{family}.{size}": InstanceType(
            name=f"ml.{family}.{size}", vcpus=vcpus, memory_mb=int(gib * _GIB), gpus=gpus
        )
        for size, (vcpus, gib, gpus) in sizes.items()
    }


# (vCPUs, memory GiB, GPUs), from AWS's instance pages.
_M5 = {
    "large": (2, 8, 0),
    "xlarge": (4, 16, 0),
    "2xlarge": (8, 32, 0),
    "4xlarge": (16, 64, 0),
    "12xlarge": (48, 192, 0),
    "24xlarge": (96, 384, 0),
}
_C5 = {
    "large": (2, 4, 0),
    "xlarge": (4, 8, 0),
    "2xlarge": (8, 16, 0),
    "4xlarge": (16, 32, 0),
    "9xlarge": (36, 72, 0),
    "18xlarge": (72, 144, 0),
}
_G5_LIKE = {
    "xlarge": (4, 16, 1),
    "2xlarge": (8, 32, 1),
    "4xlarge": (16, 64, 1),
    "8xlarge": (32, 128, 1),
    "12xlarge": (48, 192, 4),
    "16xlarge": (64, 256, 1),
    "24xlarge": (96, 384, 4),
    "48xlarge": (192, 768, 8),
}

CATALOG: dict[str, InstanceType] = {
    "local": InstanceType(name="local", vcpus=1, memory_mb=None),
    "local_gpu": InstanceType(name="local_gpu", vcpus=1, memory_mb=None, gpus=1),
    **_family("t2", {"medium": (2, 4, 0), "large": (2, 8, 0), "xlarge": (4, 16, 0), "2xlarge": (8, 32, 0)}),
    **_family("t3", {"medium": (2, 4, 0), "large": (2, 8, 0), "xlarge": (4, 16, 0), "2xlarge": (8, 32, 0)}),
    **_family(
        "m4",
        {
            "xlarge": (4, 16, 0),
            "2xlarge": (8, 32, 0),
            "4xlarge": (16, 64, 0),
            "10xlarge": (40, 160, 0),
            "16xlarge": (64, 256, 0),
        },
    ),
    **_family("m5", _M5),
    **_family("m5d", _M5),
    **_family(
        "m6i",
        {**_M5, "8xlarge": (32, 128, 0), "16xlarge": (64, 256, 0), "32xlarge": (128, 512, 0)},
    ),
    **_family(
        "c4",
        {"xlarge": (4, 7.5, 0), "2xlarge": (8, 15, 0), "4xlarge": (16, 30, 0), "8xlarge": (36, 60, 0)},
    ),
    **_family("c5", _C5),
    **_family("c5d", _C5),
    **_family(
        "r5",
        {
            "large": (2, 16, 0),
            "xlarge": (4, 32, 0),
            "2xlarge": (8, 64, 0),
            "4xlarge": (16, 128, 0),
            "12xlarge": (48, 384, 0),
            "24xlarge": (96, 768, 0),
        },
    ),
    **_family("p2", {"xlarge": (4, 61, 1), "8xlarge": (32, 488, 8), "16xlarge": (64, 732, 16)}),
    **_family("p3", {"2xlarge": (8, 61, 1), "8xlarge": (32, 244, 4), "16xlarge": (64, 488, 8)}),
    **_family("p3dn", {"24xlarge": (96, 768, 8)}),
    **_family("p4d", {"24xlarge": (96, 1152, 8)}),
    **_family("p4de", {"24xlarge": (96, 1152, 8)}),
    **_family("p5", {"48xlarge": (192, 2048, 8)}),
    **_family(
        "g4dn",
        {
            "xlarge": (4, 16, 1),
            "2xlarge": (8, 32, 1),
            "4xlarge": (16, 64, 1),
            "8xlarge": (32, 128, 1),
            "12xlarge": (48, 192, 4),
            "16xlarge": (64, 256, 1),
        },
    ),
    **_family("g5", _G5_LIKE),
    **_family("g6", _G5_LIKE),
}

# ml.<family>.<size>: family is letters then a generation digit then optional attribute letters (m5d, g4dn,
# c7gn, trn1, inf2); size is medium, large, xlarge or <N>xlarge.
_NAME = re.compile(r"^ml\.(?P<family>[a-z]+[0-9]+[a-z0-9-]*)\.(?P<size>medium|large|xlarge|(?P<n>[1-9][0-9]*)xlarge)$")
_GIB_PER_VCPU = {"c": 2, "m": 4, "t": 4, "g": 4, "p": 4, "r": 8, "x": 16}
_DEFAULT_GIB_PER_VCPU = 4


def resolve_instance_type(name: str) -> InstanceType:
    """The resources behind a SageMaker instance-type name; ``InvalidSpec`` naming the field if malformed.

    Unknown but well-formed names follow AWS's sizing rule: ``large`` = 2 vCPUs, ``xlarge`` = 4,
    ``<N>xlarge`` = 4N (``medium`` = 1); memory per vCPU by family letter (c 2 GiB, m/t/g/p 4 GiB, r 8 GiB,
    x 16 GiB, others 4 GiB); accelerated families (g, p) get one GPU, since every size of them has at least
    one.
    """
    if not isinstance(name, str):
        raise _invalid(name)
    known = CATALOG.get(name)
    if known is not None:
        return known
    match = _NAME.match(name)
    if match is None:
        raise _invalid(name)
    size = match["size"]
    vcpus = {"medium": 1, "large": 2, "xlarge": 4}.get(size) or 4 * int(match["n"])
    letter = match["family"][0]
    memory_mb = vcpus * _GIB_PER_VCPU.get(letter, _DEFAULT_GIB_PER_VCPU) * _GIB
    gpus = 1 if letter in ("g", "p") else 0
    return InstanceType(name=name, vcpus=vcpus, memory_mb=memory_mb, gpus=gpus)


def reservation_for(itype: InstanceType, capacity: Resources) -> Resources:
    """What a task of ``itype`` reserves on an executor of ``capacity``: the request clamped to the machine.

    A job asking for more than the machine has (``ml.p4d.24xlarge`` on a laptop) must run alone, not never:
    clamped to the whole machine, it waits until everything else has finished and then gets all of it.
    GPUs are clamped too, so a GPU type on a machine without GPUs runs on CPU rather than queueing forever;
    callers that want to refuse that instead compare ``itype.gpus`` with ``capacity.gpus`` themselves.
    """
    cpus = min(float(itype.vcpus), capacity.cpus)
    if itype.memory_mb is None:
        memory_mb = None
    elif capacity.memory_mb is None:
        memory_mb = itype.memory_mb
    else:
        memory_mb = min(itype.memory_mb, capacity.memory_mb)
    return Resources(cpus=cpus, memory_mb=memory_mb, gpus=min(itype.gpus, capacity.gpus))


def _invalid(name: object) -> InvalidSpec:
    return InvalidSpec(
        f"Instance type {name!r} is not valid. Use 'local', 'local_gpu' or a SageMaker name of the form "
        "'ml.<family>.<size>' in lower case, for example 'ml.m5.xlarge'.",
        details=[{"field": FIELD, "message": f"{name!r} is not ml.<family>.<size>, 'local' or 'local_gpu'"}],
    )
