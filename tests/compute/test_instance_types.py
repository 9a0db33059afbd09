"""SageMaker instance types → reservations on this machine."""

from __future__ import annotations

import pytest

from kamado.compute.instance_types import CATALOG, FIELD, InstanceType, reservation_for, resolve_instance_type
from kamado.compute.taskspec import Resources
from kamado.core.errors import InvalidSpec

GIB = 1024


@pytest.mark.parametrize(
    ("name", "vcpus", "memory_gib", "gpus"),
    [
        ("ml.t3.medium", 2, 4, 0),
        ("ml.m4.xlarge", 4, 16, 0),
        ("ml.m5.large", 2, 8, 0),
        ("ml.m5.24xlarge", 96, 384, 0),
        ("ml.m6i.32xlarge", 128, 512, 0),
        ("ml.c4.8xlarge", 36, 60, 0),
        ("ml.c5.9xlarge", 36, 72, 0),
        ("ml.r5.large", 2, 16, 0),
        ("ml.p3.2xlarge", 8, 61, 1),
        ("ml.p3.16xlarge", 64, 488, 8),
        ("ml.g4dn.12xlarge", 48, 192, 4),
        ("ml.g5.xlarge", 4, 16, 1),
        ("ml.p4d.24xlarge", 96, 1152, 8),
    ],
)
def test_catalog_matches_aws_sizes(name: str, vcpus: int, memory_gib: int, gpus: int) -> None:
    itype = resolve_instance_type(name)
    assert (itype.name, itype.vcpus, itype.memory_mb, itype.gpus) == (name, vcpus, memory_gib * GIB, gpus)


def test_c4_fractional_memory_is_kept() -> None:
    assert resolve_instance_type("ml.c4.xlarge").memory_mb == int(7.5 * GIB)


@pytest.mark.parametrize(
    ("name", "vcpus", "memory_gib", "gpus"),
    [
        ("ml.c7i.large", 2, 4, 0),  # c: 2 GiB per vCPU
        ("ml.m7i.xlarge", 4, 16, 0),  # m: 4
        ("ml.r7i.2xlarge", 8, 64, 0),  # r: 8
        ("ml.x2iedn.xlarge", 4, 64, 0),  # x: 16
        ("ml.t4g.large", 2, 8, 0),  # t: 4
        ("ml.g7.4xlarge", 16, 64, 1),  # g: 4, and at least one GPU
        ("ml.p9.48xlarge", 192, 768, 1),  # p: 4
        ("ml.trn1.32xlarge", 128, 512, 0),
        ("ml.inf2.xlarge", 4, 16, 0),  # unknown letter: 4 GiB per vCPU
        ("ml.m5.8xlarge", 32, 128, 0),  # a size missing from the table follows the rule too
    ],
)
def test_unknown_well_formed_names_follow_the_rule(name: str, vcpus: int, memory_gib: int, gpus: int) -> None:
    assert resolve_instance_type(name) == InstanceType(name=name, vcpus=vcpus, memory_mb=memory_gib * GIB, gpus=gpus)


def test_local_modes() -> None:
    assert resolve_instance_type("local") == InstanceType(name="local", vcpus=1, memory_mb=None, gpus=0)
    assert resolve_instance_type("local_gpu").gpus == 1
    assert resolve_instance_type("local").resources() == Resources(cpus=1.0, memory_mb=None, gpus=0)


@pytest.mark.parametrize(
    "name",
    ["", "m5.large", "ml.m5", "ml.m5.huge", "ML.M5.LARGE", "ml..large", "ml.m5.0xlarge", "ml.5m.large",
     "ml.m5.large ", "ml.m5.large.extra", "local-gpu", None, 42],
)  # fmt: skip
def test_malformed_names_are_invalid_spec_naming_the_field(name: object) -> None:
    with pytest.raises(InvalidSpec) as info:
        resolve_instance_type(name)  # type: ignore[arg-type]
    assert info.value.details == [{"field": FIELD, "message": info.value.details[0]["message"]}]  # type: ignore[index]
    assert "ml.m5.xlarge" in info.value.message  # the fix: an example of a valid name
    assert repr(name) in info.value.message


def test_every_catalog_entry_is_consistent() -> None:
    for name, itype in CATALOG.items():
        assert itype.name == name and itype.vcpus > 0 and itype.gpus >= 0
        assert name in ("local", "local_gpu") or (itype.memory_mb or 0) >= itype.vcpus * GIB


def test_reservation_fits_a_small_type_unchanged() -> None:
    machine = Resources(cpus=2, memory_mb=24_000, gpus=0)
    assert reservation_for(resolve_instance_type("ml.m5.large"), machine) == Resources(cpus=2, memory_mb=8 * GIB)


def test_reservation_clamps_a_type_larger_than_the_machine() -> None:
    machine = Resources(cpus=2, memory_mb=24_000, gpus=0)
    got = reservation_for(resolve_instance_type("ml.p4d.24xlarge"), machine)
    assert got == Resources(cpus=2, memory_mb=24_000, gpus=0)


def test_reservation_with_unknown_machine_memory_or_no_memory_request() -> None:
    unknown = Resources(cpus=8, memory_mb=None, gpus=1)
    assert reservation_for(resolve_instance_type("ml.g5.xlarge"), unknown) == Resources(
        cpus=4, memory_mb=16 * GIB, gpus=1
    )
    assert reservation_for(resolve_instance_type("local"), unknown) == Resources(cpus=1, memory_mb=None)
