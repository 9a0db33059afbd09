"""SageMaker's List* parameters (StatusEquals, SortBy, SortOrder, MaxResults, ...) checked and turned into
a ListQuery, the same way for every resource kind."""

from __future__ import annotations

from collections.abc import Collection

from kamado.core.errors import InvalidSpec
from kamado.store.records import ListQuery

SORT_BY = {"Name": "name", "CreationTime": "created_at", "Status": "state"}
SORT_ORDER = {"Ascending": "asc", "Descending": "desc"}


def list_query(
    *,
    statuses: Collection[str] | None = None,
    status_equals: str | None = None,
    name_contains: str | None = None,
    created_after: float | None = None,
    created_before: float | None = None,
    parent: str | None = None,
    sort_by: str = "CreationTime",
    sort_order: str = "Descending",
    max_results: int = 50,
    next_token: str | None = None,
) -> ListQuery:
    """``statuses`` are the values StatusEquals may take for this kind (None: StatusEquals not offered)."""
    if status_equals is not None and (statuses is None or status_equals not in statuses):
        raise InvalidSpec(f"StatusEquals must be one of {sorted(statuses or [])}.", details=[{"field": "StatusEquals"}])
    if sort_by not in SORT_BY:
        raise InvalidSpec(f"SortBy must be one of {sorted(SORT_BY)}.", details=[{"field": "SortBy"}])
    if sort_order not in SORT_ORDER:
        raise InvalidSpec(f"SortOrder must be one of {sorted(SORT_ORDER)}.", details=[{"field": "SortOrder"}])
    if not 1 <= max_results <= 100:
        raise InvalidSpec("MaxResults must be between 1 and 100.", details=[{"field": "MaxResults"}])
    return ListQuery(
        states=[status_equals] if status_equals else None,
        name_contains=name_contains,
        created_after=created_after,
        created_before=created_before,
        parent=parent,
        sort_by=SORT_BY[sort_by],
        sort_order=SORT_ORDER[sort_order],
        limit=max_results,
        page_token=next_token,
    )
