"""EventBridge schedule expressions: ``rate(7 days)``, ``cron(0 3 ? * MON *)`` and ``at(2026-12-01T03:00:00)``.

``cron`` has EventBridge's six fields (minutes, hours, day-of-month, month, day-of-week, year), where
day-of-week counts 1-7 from Sunday and exactly one of day-of-month and day-of-week is ``?``. Times are
computed in the schedule's IANA time zone, so ``cron(0 3 * * ? *)`` in ``Europe/Berlin`` fires at 03:00
local time on both sides of a daylight-saving change. croniter does the calendar arithmetic.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from kamado.core.errors import InvalidSpec

_RATE = re.compile(r"^rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)$")
_CRON = re.compile(r"^cron\((.+)\)$")
_AT = re.compile(r"^at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)$")
_UNIT_S = {"minute": 60, "hour": 3600, "day": 86400}
HINT = (
    "use rate(5 minutes), cron(0 3 ? * MON *) (minutes hours day-of-month month day-of-week year) "
    "or at(2026-12-01T03:00:00)"
)
#: How far ahead a cron with a year field is searched before it counts as never firing again.
_MAX_STEPS = 100_000


def _bad(expression: str, why: str, field: str) -> InvalidSpec:
    return InvalidSpec(
        f"{field} {expression!r} is not a valid schedule expression: {why}; {HINT}.",
        details=[{"field": field, "message": why}],
    )


def _dow_field(value: str) -> str:
    """EventBridge counts days of the week 1-7 from Sunday; croniter 0-6."""
    return re.sub(r"\d+", lambda m: str(int(m.group()) - 1) if 1 <= int(m.group()) <= 7 else "x", value)


def _year_matches(field: str, year: int) -> bool:
    if field == "*":
        return True
    for part in field.split(","):
        step = 1
        if "/" in part:
            part, raw_step = part.split("/", 1)
            step = int(raw_step)
        if part == "*":
            lo, hi = 1970, 2199
        elif "-" in part:
            lo, hi = (int(p) for p in part.split("-", 1))
        else:
            lo = hi = int(part)
        if lo <= year <= hi and (year - lo) % step == 0:
            return True
    return False


@dataclass(frozen=True)
class Schedule:
    """A parsed expression; :meth:`next_after` gives the first fire time strictly after a moment."""

    expression: str
    timezone: ZoneInfo
    rate_s: int | None = None
    cron: str | None = None
    year: str = "*"
    at: datetime | None = None

    def next_after(self, moment: datetime, *, anchor: datetime | None = None) -> datetime | None:
        """The first fire time after ``moment`` (aware), or None when the schedule never fires again.
        ``rate`` counts its periods from ``anchor`` (the schedule's start)."""
        if self.rate_s is not None:
            start = anchor or moment
            if moment < start:
                return start
            periods = int((moment - start).total_seconds() // self.rate_s) + 1
            return start + timedelta(seconds=periods * self.rate_s)
        if self.at is not None:
            return self.at if self.at > moment else None
        assert self.cron is not None
        it = croniter(self.cron, moment.astimezone(self.timezone))
        for _ in range(_MAX_STEPS):
            when: datetime = it.get_next(datetime)
            if _year_matches(self.year, when.year):
                return when
            if self.year != "*" and all(
                p.isdigit() and int(p) < when.year for p in re.split(r"[,\-/]", self.year) if p.isdigit()
            ):
                return None
        return None


def parse_schedule(expression: str, timezone: str = "UTC", *, field: str = "ScheduleExpression") -> Schedule:
    try:
        tz = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidSpec(
            f"ScheduleExpressionTimezone {timezone!r} is not an IANA time zone; use e.g. UTC or Europe/Berlin.",
            details=[{"field": "ScheduleExpressionTimezone", "message": "unknown time zone"}],
        ) from None
    text = expression.strip()
    if m := _RATE.match(text):
        value, unit = int(m.group(1)), m.group(2).rstrip("s")
        if value < 1:
            raise _bad(expression, "the rate must be at least 1", field)
        return Schedule(text, tz, rate_s=value * _UNIT_S[unit])
    if m := _AT.match(text):
        return Schedule(text, tz, at=datetime.fromisoformat(m.group(1)).replace(tzinfo=tz))
    if m := _CRON.match(text):
        fields = m.group(1).split()
        if len(fields) != 6:
            raise _bad(expression, f"cron needs 6 fields, found {len(fields)}", field)
        minute, hour, dom, month, dow, year = fields
        if (dom == "?") == (dow == "?"):
            raise _bad(expression, "exactly one of day-of-month and day-of-week must be '?'", field)
        if not re.fullmatch(r"[\d,\-/*]+", year):
            raise _bad(expression, "the year field takes numbers, ranges, lists, steps or *", field)
        dow = _dow_field(dow) if dow != "?" else "*"
        if "x" in dow:
            raise _bad(expression, "day-of-week numbers run from 1 (Sunday) to 7 (Saturday)", field)
        spec = " ".join([minute, hour, "*" if dom == "?" else dom, month, dow])
        if not croniter.is_valid(spec):
            raise _bad(expression, "a field is out of range or malformed", field)
        return Schedule(text, tz, cron=spec, year=year)
    raise _bad(expression, "unknown form", field)
