"""``kamado.Predictor``: the SageMaker Python SDK's Predictor, for a kamado endpoint.

``predictor.predict(data)`` serializes, invokes through kamado's router and deserializes, as
``sagemaker.predictor.Predictor`` does. The management calls (update, weights, autoscaling, delete) are
that class's too, plus the two SageMaker leaves to Application Auto Scaling and CloudWatch, which kamado
does itself: ``enable_autoscaling`` and auto-rollback alarms in ``deployment_config``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kamado.core.errors import InvalidSpec
from kamado.core.names import unique_name
from kamado.sdk.client import Client
from kamado.sdk.deserializers import BaseDeserializer, JSONDeserializer
from kamado.sdk.errors import EndpointUpdateRolledBack
from kamado.sdk.serializers import BaseSerializer, JSONSerializer

#: ``initial_args`` keys (boto3's InvokeEndpoint parameter names) that ``predict`` understands.
_INVOKE_ARGS = {
    "ContentType": "content_type",
    "Accept": "accept",
    "TargetVariant": "target_variant",
    "CustomAttributes": "custom_attributes",
    "InferenceId": "inference_id",
}
DEFAULT_WAIT_S = 900.0


class Predictor:
    def __init__(
        self,
        endpoint_name: str,
        client: Client | None = None,
        serializer: BaseSerializer | None = None,
        deserializer: BaseDeserializer | None = None,
        **kwargs: Any,
    ) -> None:
        unknown = sorted(set(kwargs) - {"sagemaker_session", "component_name"})
        if unknown:
            raise TypeError(f"Predictor got unexpected argument(s) {unknown}")
        self.endpoint_name = endpoint_name
        self._client = client
        # Fresh instances, not shared defaults: serializers carry settings a caller may change.
        self.serializer: BaseSerializer = serializer if serializer is not None else JSONSerializer()
        self.deserializer: BaseDeserializer = deserializer if deserializer is not None else JSONDeserializer()
        self._endpoint_config_name: str | None = None
        self._model_names: list[str] | None = None

    @property
    def client(self) -> Client:
        if self._client is None:
            self._client = Client()
        return self._client

    @property
    def content_type(self) -> str:
        return self.serializer.CONTENT_TYPE

    @property
    def accept(self) -> tuple[str, ...]:
        return self.deserializer.ACCEPT

    def __repr__(self) -> str:
        return f"Predictor({self.endpoint_name!r})"

    # -- inference ------------------------------------------------------------------------------------------
    def predict(
        self,
        data: Any,
        initial_args: Mapping[str, Any] | None = None,
        target_variant: str | None = None,
        custom_attributes: str | None = None,
        inference_id: str | None = None,
        timeout: float = 70.0,
    ) -> Any:
        """Raises ``kamado.ModelError`` when the model fails, ``NotFound`` for an endpoint that does not
        exist and ``ServiceUnavailable`` when no instance could take the request in time."""
        args: dict[str, Any] = {
            "content_type": self.content_type,
            "accept": ", ".join(self.accept),
            "target_variant": target_variant,
            "custom_attributes": custom_attributes,
            "inference_id": inference_id,
        }
        for key, value in (initial_args or {}).items():
            if key not in _INVOKE_ARGS:
                if key in ("EndpointName", "Body"):
                    continue  # boto3's own parameters: already fixed by this predictor and ``data``
                raise TypeError(f"initial_args: unknown InvokeEndpoint parameter {key!r}; use {sorted(_INVOKE_ARGS)}")
            if value is not None:
                args[_INVOKE_ARGS[key]] = value
        body = self.serializer.serialize(data)
        result = self.client.invoke_endpoint(
            self.endpoint_name, body.encode() if isinstance(body, str) else bytes(body), timeout=timeout, **args
        )
        return self.deserializer.deserialize(result.body, result.content_type)

    # -- management -----------------------------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        return self.client.describe_endpoint(self.endpoint_name)

    def _current_config(self) -> dict[str, Any]:
        name = self.client.describe_endpoint(self.endpoint_name, metrics_window_s=0)["EndpointConfigName"]
        self._endpoint_config_name = name
        config = self.client.describe_endpoint_config(name)
        self._model_names = list(dict.fromkeys(v["ModelName"] for v in config["ProductionVariants"]))
        return config

    def update_endpoint(
        self,
        initial_instance_count: int | None = None,
        instance_type: str | None = None,
        model_name: str | None = None,
        endpoint_config_name: str | None = None,
        deployment_config: Mapping[str, Any] | None = None,
        wait: bool = True,
        tags: list[dict[str, str]] | None = None,
        data_capture_config_dict: Mapping[str, Any] | None = None,
        wait_timeout: float = DEFAULT_WAIT_S,
    ) -> dict[str, Any] | None:
        """Blue/green update to ``endpoint_config_name``, or to a new config copied from the current one with
        the given changes. With ``wait``, returns the description once InService, and raises
        ``EndpointUpdateRolledBack`` with the FailureReason when an alarm or a failed start rolled it back."""
        changes = (initial_instance_count, instance_type, model_name, data_capture_config_dict)
        if endpoint_config_name is None:
            if all(c is None for c in changes):
                raise InvalidSpec(
                    "update_endpoint needs endpoint_config_name, or a change: initial_instance_count, "
                    "instance_type, model_name or data_capture_config_dict.",
                    details=[{"field": "endpoint_config_name"}],
                )
            endpoint_config_name = self._derive_config(
                initial_instance_count, instance_type, model_name, data_capture_config_dict, tags
            )
        elif any(c is not None for c in changes):
            raise InvalidSpec(
                "update_endpoint: give endpoint_config_name or changes to the current config, not both.",
                details=[{"field": "endpoint_config_name"}],
            )
        self.client.update_endpoint(
            self.endpoint_name,
            endpoint_config_name,
            deployment_config=dict(deployment_config) if deployment_config is not None else None,
        )
        self._endpoint_config_name = None
        self._model_names = None
        if not wait:
            return None
        desc = self.client.wait_for_endpoint(self.endpoint_name, timeout=wait_timeout)
        if desc.get("EndpointConfigName") != endpoint_config_name or desc.get("FailureReason"):
            raise EndpointUpdateRolledBack(
                f"Endpoint '{self.endpoint_name}' was not updated to '{endpoint_config_name}': "
                f"{desc.get('FailureReason') or 'the update was rolled back'}. "
                f"It still serves '{desc.get('EndpointConfigName')}'.",
                details={"EndpointName": self.endpoint_name, "EndpointConfigName": desc.get("EndpointConfigName")},
            )
        return desc

    def _derive_config(
        self,
        count: int | None,
        instance_type: str | None,
        model_name: str | None,
        capture: Mapping[str, Any] | None,
        tags: list[dict[str, str]] | None,
    ) -> str:
        current = self._current_config()
        variants = [dict(v) for v in current["ProductionVariants"]]
        if model_name is not None and len(variants) > 1:
            raise InvalidSpec(
                f"Endpoint '{self.endpoint_name}' has {len(variants)} variants, so model_name does not say which "
                "to change; create an endpoint config and pass endpoint_config_name.",
                details=[{"field": "model_name"}],
            )
        for v in variants:
            if count is not None:
                v["InitialInstanceCount"] = count
            if instance_type is not None:
                v["InstanceType"] = instance_type
            if model_name is not None:
                v["ModelName"] = model_name
        request: dict[str, Any] = {
            "EndpointConfigName": unique_name(self.endpoint_name),
            "ProductionVariants": variants,
        }
        if capture is not None:
            request["DataCaptureConfig"] = dict(capture)
        elif current.get("DataCaptureConfig"):
            request["DataCaptureConfig"] = current["DataCaptureConfig"]
        if tags:
            request["Tags"] = tags
        self.client.create_endpoint_config(request)
        return str(request["EndpointConfigName"])

    def update_weights_and_capacities(
        self,
        weights: Mapping[str, float] | None = None,
        instance_counts: Mapping[str, int] | None = None,
        wait: bool = True,
        wait_timeout: float = DEFAULT_WAIT_S,
    ) -> dict[str, Any] | None:
        """UpdateEndpointWeightsAndCapacities: change variants in place, with no new fleet. ``weights`` and
        ``instance_counts`` map variant names to the new values; a variant may appear in either or both."""
        names = list(dict.fromkeys([*(weights or {}), *(instance_counts or {})]))
        if not names:
            raise InvalidSpec("Give weights, instance_counts or both.", details=[{"field": "weights"}])
        desired = []
        for name in names:
            item: dict[str, Any] = {"VariantName": name}
            if weights and name in weights:
                item["DesiredWeight"] = weights[name]
            if instance_counts and name in instance_counts:
                item["DesiredInstanceCount"] = instance_counts[name]
            desired.append(item)
        self.client.update_endpoint_weights_and_capacities(self.endpoint_name, desired)
        return self.client.wait_for_endpoint(self.endpoint_name, timeout=wait_timeout) if wait else None

    def enable_autoscaling(
        self,
        variant: str,
        min_capacity: int,
        max_capacity: int,
        target_invocations_per_instance_per_minute: float,
        scale_out_cooldown: float = 60,
        scale_in_cooldown: float = 300,
        disable_scale_in: bool = False,
        target_model_latency_p99_ms: float | None = None,
        evaluation_window_seconds: float | None = None,
    ) -> None:
        """Target tracking on ``SageMakerVariantInvocationsPerInstance``, SageMaker's usual endpoint policy.
        ``min_capacity=0`` lets an idle variant scale to zero; the router holds requests while it wakes."""
        policy: dict[str, Any] = {
            "MinCapacity": min_capacity,
            "MaxCapacity": max_capacity,
            "TargetValue": target_invocations_per_instance_per_minute,
            "ScaleOutCooldown": scale_out_cooldown,
            "ScaleInCooldown": scale_in_cooldown,
            "DisableScaleIn": disable_scale_in,
        }
        if target_model_latency_p99_ms is not None:
            policy["TargetModelLatencyP99Ms"] = target_model_latency_p99_ms
        if evaluation_window_seconds is not None:
            policy["EvaluationWindowSeconds"] = evaluation_window_seconds
        self.client.put_scaling_policy(self.endpoint_name, variant, policy)

    def disable_autoscaling(self, variant: str) -> None:
        self.client.delete_scaling_policy(self.endpoint_name, variant)

    def delete_endpoint(self, delete_endpoint_config: bool = True, wait_timeout: float = 120.0) -> None:
        """Delete the endpoint and, by default, the config it serves. The config can go only once the endpoint
        is gone, so then this waits for the instances to stop; without the config it returns at once."""
        config = None
        if delete_endpoint_config:
            config = self._endpoint_config_name or self._current_config()["EndpointConfigName"]
        elif self._model_names is None:
            self._current_config()  # remember the models, so delete_model still works afterwards
        self.client.delete_endpoint(self.endpoint_name)
        if config is not None:
            self.client.wait_for_endpoint_deleted(self.endpoint_name, timeout=wait_timeout)
            self.client.delete_endpoint_config(config)

    def delete_model(self) -> None:
        """Delete the models behind the endpoint (as remembered, if the endpoint is already deleted)."""
        if self._model_names is None:
            self._current_config()
        for name in self._model_names or []:
            self.client.delete_model(name)


def blue_green_config(
    *,
    canary_percent: int | None = None,
    linear_percent: int | None = None,
    wait_interval_s: float = 0,
    termination_wait_s: float = 0,
    rollback_on_5xx_rate: float | None = None,
    rollback_on_p99_latency_ms: float | None = None,
    alarm_window_s: float = 30,
) -> dict[str, Any]:
    """A ``DeploymentConfig`` for ``update_endpoint`` without writing the nested dict by hand: all at once,
    canary (``canary_percent`` then the rest) or linear (``linear_percent`` at a time), each step baking
    ``wait_interval_s``, with auto-rollback on the new fleet's 5xx rate (a fraction) or p99 latency."""
    if canary_percent is not None and linear_percent is not None:
        raise InvalidSpec("Give canary_percent or linear_percent, not both.", details=[{"field": "canary_percent"}])
    routing: dict[str, Any] = {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": wait_interval_s}
    if canary_percent is not None:
        routing = {**routing, "Type": "CANARY", "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": canary_percent}}
    elif linear_percent is not None:
        routing = {
            **routing,
            "Type": "LINEAR",
            "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": linear_percent},
        }
    config: dict[str, Any] = {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": routing,
            "TerminationWaitInSeconds": termination_wait_s,
        }
    }
    alarms = []
    if rollback_on_5xx_rate is not None:
        alarms.append(
            {
                "AlarmName": "kamado-5xx-rate",
                "Metric": "Invocation5XXErrorRate",
                "Threshold": rollback_on_5xx_rate,
                "WindowSeconds": alarm_window_s,
            }
        )
    if rollback_on_p99_latency_ms is not None:
        alarms.append(
            {
                "AlarmName": "kamado-p99-latency",
                "Metric": "ModelLatencyP99",
                "Threshold": rollback_on_p99_latency_ms,
                "WindowSeconds": alarm_window_s,
            }
        )
    if alarms:
        config["AutoRollbackConfiguration"] = {"Alarms": alarms}
    return config
