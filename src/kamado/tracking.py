"""``kamado.log_metric`` for training scripts. Standard library only: importing it costs nothing.

The metric travels as one line on stdout, which the platform already captures and parses, so it
works the same on every executor and needs no network access from the job.
"""

from __future__ import annotations

import json
import math
import sys
import time

METRIC_LINE_PREFIX = "#kamado-metric "


def log_metric(name: str, value: float, step: int | None = None) -> None:
    """Record one metric point for the running training job (and print it, so you see it too)."""
    value = float(value)
    if not name or not math.isfinite(value):
        raise ValueError(f"log_metric needs a name and a finite value, got {name!r}={value!r}")
    record = {"name": str(name), "value": value, "ts": time.time()}
    if step is not None:
        record["step"] = int(step)
    sys.stdout.write(METRIC_LINE_PREFIX + json.dumps(record) + "\n")
    sys.stdout.flush()
