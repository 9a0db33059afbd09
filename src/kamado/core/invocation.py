"""Wire constants of sagemaker-runtime's InvokeEndpoint, shared by the router, the SDK and the CLI."""

from __future__ import annotations

#: SageMaker's InvokeEndpoint body limit (6 MB), for requests and responses.
MAX_INVOCATION_BYTES = 6 * 1024 * 1024
#: SageMaker's limit on how long a model may take to answer /invocations.
DEFAULT_MODEL_TIMEOUT_S = 60.0

TARGET_VARIANT_HEADER = "X-Amzn-SageMaker-Target-Variant"
INVOKED_VARIANT_HEADER = "X-Amzn-Invoked-Production-Variant"
CUSTOM_ATTRIBUTES_HEADER = "X-Amzn-SageMaker-Custom-Attributes"
INFERENCE_ID_HEADER = "X-Amzn-SageMaker-Inference-Id"
#: botocore reads the error code from this header (the text before any ':').
ERROR_TYPE_HEADER = "x-amzn-ErrorType"


def invocations_path(endpoint_name: str) -> str:
    return f"/endpoints/{endpoint_name}/invocations"
