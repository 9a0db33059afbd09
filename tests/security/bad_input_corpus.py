"""The T11 bad-input corpus (RELIABILITY.md, attacks A1-A7, A13, A17, A18) as plain data.

Each :class:`Probe` is one request. The corpus is built from the server's own OpenAPI document, so a route
added later is attacked too: every operation that takes a body gets the body-level attacks, every path
parameter the path attacks, every list route the filter and paging attacks. Field-level attacks (names,
data URIs) go into otherwise valid create requests, so they reach the checks behind schema validation.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

#: Replaced in URIs by the address of a listener that records any request (SSRF probes).
LISTENER = "{listener}"
#: Replaced by the absolute path of a canary file outside the artifact root.
CANARY = "{canary}"


@dataclass(frozen=True)
class Probe:
    attack: str
    method: str
    path: str
    body: bytes | None = None
    params: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)

    def label(self) -> str:
        return f"{self.attack} {self.method} {self.path}"


# -- A1: traversal, A4: SSRF -------------------------------------------------------------------------
TRAVERSAL = [
    "../../etc/passwd",
    "..%2f..%2fetc%2fpasswd",
    "%252e%252e%252fetc%252fpasswd",
    "..\\..\\windows\\win.ini",
    "/etc/passwd",
    "//proc/self/root/etc/passwd",
    "file:///etc/passwd",
    "a/#/../../../etc/passwd",
    "a%00.txt",
    "a\x00b",
    "x" * 1100,
    "\u2024\u2024/\u2024\u2024/etc/passwd",  # one-dot leaders, look-alike dots
    f"file://{CANARY}",
    CANARY,
    f"../../../../..{CANARY}",
]
SSRF = [
    "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
    "http://[::ffff:169.254.169.254]/latest/meta-data/",
    "http://2852039166/latest/meta-data/",
    f"http://{LISTENER}/admin",
    f"https://{LISTENER}/x",
    "http://localhost:1/admin",
    "http://10.0.0.5/x",
    "gopher://127.0.0.1:6379/_INFO",
    "ftp://127.0.0.1/x",
    f"s3://{LISTENER}/bucket/key",
]
URIS = TRAVERSAL + SSRF

# -- A18: names ---------------------------------------------------------------------------------------
NAMES = [
    "bad\r\nX-Injected: 1",
    "\x1b[31mred\x1b[0m",
    "<script>alert(1)</script>",
    "\u202egnp.exe",
    "a" * 10_000,
    "",
    " ",
    "name with spaces",
    "../escape",
    "%2e%2e",
    "x'; DROP TABLE resources; --",
    "\ud800",
]

# -- A13: filters and paging --------------------------------------------------------------------------
LIST_QUERIES: list[dict[str, str]] = [
    {"NameContains": "x' OR 1=1 --"},
    {"NameContains": "%" * 5000},
    {"NameContains": "_%_%_%_%\\"},
    {"SortBy": "name;DROP TABLE resources"},
    {"SortBy": "(CASE WHEN 1=1 THEN name ELSE arn END)"},
    {"SortOrder": "Sideways"},
    {"StatusEquals": "InProgress' OR '1'='1"},
    {"MaxResults": "1000000000"},
    {"MaxResults": "-1"},
    {"MaxResults": "abc"},
    {"NextToken": "' OR 1=1 --"},
    {"NextToken": "eyJvZmZzZXQiOiAtMX0="},  # {"offset": -1}
    {"NextToken": "A" * 5000},
    {"CreationTimeAfter": "not-a-date"},
    {"CreationTimeAfter": "1e999999"},
]

# -- A6: body-level abuse -----------------------------------------------------------------------------
DEEP = 100_000


def body_attacks(*, heavy: bool) -> Iterator[tuple[str, bytes, dict[str, str]]]:
    """(attack, body, headers): every one must be refused with a 4xx, never a 5xx. ``heavy`` adds the
    50,000-key object, which costs the server about half a second per route (pydantic lists every key)."""
    js = {"Content-Type": "application/json"}
    yield "A6 deep array", b"[" * DEEP + b"]" * DEEP, js
    yield "A6 deep object", b'{"a":' * DEEP + b"1" + b"}" * DEEP, js
    yield "A6 huge exponent", b'{"x": 1e999999}', js
    yield "A6 10^5-digit integer", b'{"x": ' + b"9" * 100_000 + b"}", js
    yield "A6 NaN", b'{"x": NaN, "y": Infinity}', js
    yield "A6 invalid UTF-8", b'{"x": "\xff\xfe\xfd"}', js
    yield "A6 lone surrogate", b'{"x": "\\ud800"}', js
    yield "A6 duplicate keys", b'{"x": 1, "x": {"y": 2}}', js
    if heavy:
        yield "A6 many keys", json.dumps({f"k{i}": i for i in range(50_000)}).encode(), js
    yield "A6 not an object", b'"just a string"', js
    yield "A6 null", b"null", js
    yield "A6 truncated", b'{"x": [1, 2', js
    yield "A6 wrong content type", b"<xml/>", {"Content-Type": "application/xml"}
    yield "A6 empty", b"", js


# -- A7: malicious state machines -----------------------------------------------------------------------
def asl_attacks() -> Iterator[tuple[str, dict[str, Any]]]:
    count = iter(range(1000))

    def sm(definition: Any) -> dict[str, Any]:
        text = definition if isinstance(definition, str) else json.dumps(definition)
        return {"name": f"evil-{next(count)}", "definition": text, "roleArn": "arn:aws:iam::000000000000:role/x"}

    yield (
        "A7 choice loops to itself",
        sm(
            {
                "StartAt": "C",
                "States": {
                    "C": {
                        "Type": "Choice",
                        "Choices": [{"Variable": "$.x", "IsPresent": True, "Next": "C"}],
                        "Default": "C",
                    }
                },
            }
        ),
    )
    yield "A7 wait 10^12 s", sm({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 10**12, "End": True}}})
    yield (
        "A7-runtime map concurrency 0 over ArrayRange 1e9",
        sm(
            {
                "StartAt": "P",
                "States": {
                    "P": {"Type": "Pass", "Parameters": {"a.$": "States.ArrayRange(0, 1000000000, 1)"}, "Next": "M"},
                    "M": {
                        "Type": "Map",
                        "ItemsPath": "$.a",
                        "MaxConcurrency": 0,
                        "ItemProcessor": {"StartAt": "I", "States": {"I": {"Type": "Pass", "End": True}}},
                        "End": True,
                    },
                },
            }
        ),
    )
    # Built as text: 1,000 levels are past what json.dumps itself can nest.
    opening = '{"StartAt": "P", "States": {"P": {"Type": "Parallel", "End": true, "Branches": ['
    leaf = '{"StartAt": "L", "States": {"L": {"Type": "Pass", "End": true}}}'
    yield "A7 1000-deep Parallel", sm(opening * 1000 + leaf + "]}}}" * 1000)
    yield (
        "A7 retry 10^9 attempts",
        sm(
            {
                "StartAt": "T",
                "States": {
                    "T": {
                        "Type": "Task",
                        "Resource": "arn:aws:states:::lambda:invoke",
                        "Parameters": {"FunctionName": "nope"},
                        "Retry": [{"ErrorEquals": ["States.ALL"], "MaxAttempts": 10**9, "BackoffRate": 0.5}],
                        "End": True,
                    }
                },
            }
        ),
    )
    yield "A7 Next to a missing state", sm({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "Nowhere"}}})
    yield (
        "A7 control characters in a state name",
        sm({"StartAt": "a\x07b", "States": {"a\x07b": {"Type": "Pass", "End": True}}}),
    )
    yield "A7 state name over 80 characters", sm({"StartAt": "s" * 200, "States": {"s" * 200: {"Type": "Succeed"}}})
    for resource in ("http://127.0.0.1:1/", "/bin/sh -c id", "arn:aws:lambda:us-east-1:999999999999:function:other"):
        yield (
            f"A7 Resource {resource}",
            sm({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": resource, "End": True}}}),
        )
    yield "A7 definition over 1 MB", sm("{" + " " * (1 << 20) + "}")
    yield "A7 definition is not JSON", sm("StartAt: A")


# -- valid create requests with one field replaced -----------------------------------------------------
JOB = {"AlgorithmSpecification": {"ContainerEntrypoint": ["python3", "-c", "print(1)"]}}


def field_attacks(models_uri: str) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(attack, path, body): a valid create request with one name or URI replaced by an attack."""
    for i, name in enumerate(NAMES):
        yield f"A18 training job name #{i}", "/api/v1/training-jobs", {"TrainingJobName": name, **JOB}
        yield (
            f"A18 function name #{i}",
            "/api/v1/functions",
            {"FunctionName": name, "Handler": "a.b", "Code": {"Uri": models_uri}},
        )
        yield (
            f"A18 model name #{i}",
            "/api/v1/models",
            {"ModelName": name, "PrimaryContainer": {"ModelDataUrl": models_uri}},
        )
        yield f"A18 secret name #{i}", "/api/v1/secrets", {"Name": name, "Value": "v"}
        yield f"A18 description #{i}", "/api/v1/secrets", {"Name": f"d{i}", "Value": "v", "Description": name * 3}
    for i, uri in enumerate(URIS):
        channel = {"ChannelName": "train", "DataSource": {"S3DataSource": {"S3Uri": uri}}}
        yield (
            f"A1/A4 training input #{i}",
            "/api/v1/training-jobs",
            {"TrainingJobName": f"t{i}", **JOB, "InputDataConfig": [channel]},
        )
        yield (
            f"A1/A4 training output #{i}",
            "/api/v1/training-jobs",
            {
                "TrainingJobName": f"o{i}",
                **JOB,
                "OutputDataConfig": {"S3OutputPath": uri},
            },
        )
        yield (
            f"A1/A4 model data #{i}",
            "/api/v1/models",
            {"ModelName": f"m{i}", "PrimaryContainer": {"ModelDataUrl": uri}},
        )
        yield (
            f"A1/A4 processing input #{i}",
            "/api/v1/processing-jobs",
            {
                "ProcessingJobName": f"p{i}",
                "AppSpecification": {"ContainerEntrypoint": ["python3", "-c", "print(1)"]},
                "ProcessingResources": {"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large"}},
                "ProcessingInputs": [
                    {"InputName": "d", "S3Input": {"S3Uri": uri, "LocalPath": "/opt/ml/processing/in"}}
                ],
            },
        )
        yield (
            f"A1/A4 function code #{i}",
            "/api/v1/functions",
            {"FunctionName": f"f{i}", "Handler": "a.b", "Code": {"Uri": uri}},
        )
        yield (
            f"A1/A4 map items #{i}",
            "/api/v1/map-runs",
            {
                "FunctionName": "nope",
                "ItemSource": {"Uri": uri, "Format": "JSONL"},
            },
        )
        yield (
            f"A1/A4 trigger prefix #{i}",
            "/api/v1/triggers",
            {
                "Name": f"tr{i}",
                "Prefix": uri,
                "Target": {"StateMachineName": "nope"},
            },
        )


def path_values() -> list[str]:
    return [v for v in TRAVERSAL + NAMES if v and "\x00" not in v and "\ud800" not in v]


def templated(path: str, value: str) -> str:
    from urllib.parse import quote

    return re.sub(r"\{[^}]+\}", lambda _m: quote(value, safe=""), path)
