"""Metrics from log lines: the job's ``MetricDefinitions`` regexes plus ``kamado.log_metric`` lines."""

from __future__ import annotations

import json
import math
import re

from kamado.store.records import MetricPoint
from kamado.tracking import METRIC_LINE_PREFIX

#: Only this much of a line is matched, so a pathological regex cannot stall the control plane on
#: a multi-megabyte line.
MAX_MATCH_CHARS = 4096


class MetricExtractor:
    def __init__(self, definitions: list[tuple[str, str]]) -> None:
        self._defs = [(name, re.compile(regex)) for name, regex in definitions]

    def extract(self, line: str, ts: float) -> list[MetricPoint]:
        if line.startswith(METRIC_LINE_PREFIX):
            point = _parse_helper_line(line[len(METRIC_LINE_PREFIX) :], ts)
            return [point] if point else []
        text = line[:MAX_MATCH_CHARS]
        points = []
        for name, pattern in self._defs:
            m = pattern.search(text)
            if not m:
                continue
            try:
                value = float(m.group(1))
            except (TypeError, ValueError, IndexError):
                continue  # SageMaker skips matches that are not numbers
            if math.isfinite(value):
                points.append(MetricPoint(metric=name, value=value, ts=ts))
        return points


def _parse_helper_line(payload: str, ts: float) -> MetricPoint | None:
    try:
        data = json.loads(payload)
        name = str(data["name"])[:255]
        value = float(data["value"])
        step = data.get("step")
        step = None if step is None else int(step)
        when = float(data.get("ts", ts))
    except (ValueError, KeyError, TypeError):
        return None
    if not name or not math.isfinite(value):
        return None
    return MetricPoint(metric=name, value=value, ts=when, step=step)
