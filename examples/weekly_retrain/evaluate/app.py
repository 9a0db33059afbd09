"""The pipeline's evaluation step, as a kamado function: reads the trained job's validation accuracy.

Input: ``{"metrics": FinalMetricDataList of the training job, "threshold": 0.9}``.
Output: ``{"accuracy": 0.97, "better": true}``.
"""


def handler(event, context):
    values = {m["MetricName"]: m["Value"] for m in event.get("metrics") or []}
    if "validation:accuracy" not in values:
        raise ValueError(f"the training job reported no validation:accuracy (it reported {sorted(values)})")
    accuracy = float(values["validation:accuracy"])
    return {"accuracy": accuracy, "better": accuracy >= float(event["threshold"])}
