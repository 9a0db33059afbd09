"""Endpoint statuses, as SageMaker names them."""

from __future__ import annotations

from enum import StrEnum


class EndpointStatus(StrEnum):
    CREATING = "Creating"
    UPDATING = "Updating"
    SYSTEM_UPDATING = "SystemUpdating"
    ROLLING_BACK = "RollingBack"
    IN_SERVICE = "InService"
    OUT_OF_SERVICE = "OutOfService"
    DELETING = "Deleting"
    FAILED = "Failed"
    #: A deployment failed and so did its rollback: a mixed fleet is serving; an operator must act.
    UPDATE_ROLLBACK_FAILED = "UpdateRollbackFailed"


class InstanceState(StrEnum):
    #: Process started, /ping not answered yet: takes no traffic.
    STARTING = "Starting"
    #: Passed /ping: listed in the routing table.
    IN_SERVICE = "InService"
    #: Taken out of the routing table; stopped once requests it already had are done.
    DRAINING = "Draining"
