"""CreateModel, CreateEndpointConfig, CreateEndpoint, UpdateEndpoint and friends, as SageMaker shapes them.

Field names are SageMaker's own so a boto3 facade stays thin. Where SageMaker leans on a service kamado
does not have (CloudWatch alarms, Application Auto Scaling, containers), a few extension fields say
what kamado needs instead; each is marked *kamado extension* and documented in docs/hosting.md.
Unknown fields are rejected, and features kamado does not offer yet are refused with a clear 400
instead of being silently ignored.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from kamado.core.names import NAME_HINT, NAME_PATTERN
from kamado.training.spec import Tag

_ENV_KEY = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
Name = Annotated[str, Field(min_length=1, max_length=63, pattern=NAME_PATTERN.pattern, description=NAME_HINT)]


class _Shape(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# -- Model -----------------------------------------------------------------------------------------------
class ContainerDefinition(_Shape):
    #: Recorded; kamado runs its own model server (or ``Command``) instead of a container image.
    Image: Annotated[str | None, Field(max_length=255)] = None
    Mode: Literal["SingleModel"] = "SingleModel"
    #: A ``model.tar.gz`` (or an uploaded directory) in kamado's artifact store, extracted into the
    #: instance's model directory before it starts.
    ModelDataUrl: Annotated[str | None, Field(max_length=1024)] = None
    Environment: Annotated[dict[str, Annotated[str, Field(max_length=1024)]], Field(max_length=100)] = {}
    ContainerHostname: Annotated[str | None, Field(max_length=63)] = None
    #: *kamado extension*: run this command instead of kamado's model server. It must serve ``GET /ping``
    #: and ``POST /invocations`` on 127.0.0.1 at the port in ``$SAGEMAKER_BIND_TO_PORT`` (SageMaker's
    #: bring-your-own-container contract, without the container). Runs in the code directory.
    Command: Annotated[list[Annotated[str, Field(min_length=1, max_length=1024)]] | None, Field(min_length=1)] = None

    @field_validator("Environment")
    @classmethod
    def _env_keys(cls, v: dict[str, str]) -> dict[str, str]:
        bad = [k for k in v if not _ENV_KEY.match(k)]
        if bad:
            raise ValueError(f"keys {bad} are not valid environment variable names ([A-Za-z_][A-Za-z0-9_]*)")
        return v


class CreateModelRequest(_Shape):
    ModelName: Name
    PrimaryContainer: ContainerDefinition | None = None
    Containers: list[ContainerDefinition] | None = None
    ExecutionRoleArn: str | None = None
    EnableNetworkIsolation: bool = False
    VpcConfig: dict[str, Any] | None = None
    Tags: Annotated[list[Tag], Field(max_length=50)] = []

    @model_validator(mode="after")
    def _one_container(self) -> CreateModelRequest:
        if self.Containers is not None:
            if len(self.Containers) != 1 or self.PrimaryContainer is not None:
                raise ValueError(
                    "Containers: inference pipelines (several containers) are not supported yet; "
                    "give one PrimaryContainer"
                )
        elif self.PrimaryContainer is None:
            raise ValueError("PrimaryContainer is required (the model data and its environment)")
        return self

    def container(self) -> ContainerDefinition:
        if self.PrimaryContainer is not None:
            return self.PrimaryContainer
        assert self.Containers
        return self.Containers[0]


# -- EndpointConfig ----------------------------------------------------------------------------------------
class RoutingConfigSpec(_Shape):
    RoutingStrategy: Literal["LEAST_OUTSTANDING_REQUESTS", "RANDOM"] = "LEAST_OUTSTANDING_REQUESTS"


class ProductionVariant(_Shape):
    VariantName: Name
    ModelName: Name
    InitialInstanceCount: Annotated[int, Field(ge=1, le=64)] = 1
    InstanceType: str = "local"
    InitialVariantWeight: Annotated[float, Field(ge=0)] = 1.0
    RoutingConfig: RoutingConfigSpec | None = None
    ContainerStartupHealthCheckTimeoutInSeconds: Annotated[int, Field(ge=1, le=3600)] = 300
    ModelDataDownloadTimeoutInSeconds: Annotated[int, Field(ge=1, le=3600)] = 600
    VolumeSizeInGB: Annotated[int | None, Field(ge=1, le=512)] = None
    ServerlessConfig: dict[str, Any] | None = None

    @field_validator("ServerlessConfig")
    @classmethod
    def _no_serverless(cls, v: dict[str, Any] | None) -> None:
        if v is not None:
            raise ValueError(
                "serverless variants are not supported; use InitialInstanceCount and an autoscaling policy "
                "with MinCapacity 0 for scale-to-zero"
            )
        return None


class CaptureOption(_Shape):
    CaptureMode: Literal["Input", "Output", "InputAndOutput"]


class CaptureContentTypeHeaderSpec(_Shape):
    CsvContentTypes: Annotated[list[str], Field(min_length=1, max_length=10)] | None = None
    JsonContentTypes: Annotated[list[str], Field(min_length=1, max_length=10)] | None = None


class DataCaptureConfigSpec(_Shape):
    EnableCapture: bool = True
    InitialSamplingPercentage: Annotated[int, Field(ge=0, le=100)]
    #: A URI in kamado's artifact store (``file://...`` locally); captures land under
    #: ``<DestinationS3Uri>/<endpoint>/<variant>/yyyy/mm/dd/hh/``.
    DestinationS3Uri: Annotated[str, Field(min_length=1, max_length=512)]
    KmsKeyId: str | None = None
    CaptureOptions: Annotated[list[CaptureOption], Field(min_length=1, max_length=32)]
    CaptureContentTypeHeader: CaptureContentTypeHeaderSpec | None = None

    def modes(self) -> set[str]:
        out: set[str] = set()
        for option in self.CaptureOptions:
            out |= {"Input", "Output"} if option.CaptureMode == "InputAndOutput" else {option.CaptureMode}
        return out


class CreateEndpointConfigRequest(_Shape):
    EndpointConfigName: Name
    ProductionVariants: Annotated[list[ProductionVariant], Field(min_length=1, max_length=10)]
    DataCaptureConfig: DataCaptureConfigSpec | None = None
    KmsKeyId: str | None = None
    AsyncInferenceConfig: dict[str, Any] | None = None
    ShadowProductionVariants: list[dict[str, Any]] | None = None
    ExecutionRoleArn: str | None = None
    EnableNetworkIsolation: bool = False
    Tags: Annotated[list[Tag], Field(max_length=50)] = []

    @model_validator(mode="after")
    def _variants(self) -> CreateEndpointConfigRequest:
        names = [v.VariantName for v in self.ProductionVariants]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"ProductionVariants: variant names must be unique; repeated: {dupes}")
        if sum(v.InitialVariantWeight for v in self.ProductionVariants) <= 0:
            raise ValueError(
                "ProductionVariants: at least one InitialVariantWeight must be above 0, or no request could be served"
            )
        if self.AsyncInferenceConfig is not None:
            raise ValueError("AsyncInferenceConfig: asynchronous inference is not supported yet")
        if self.ShadowProductionVariants:
            raise ValueError("ShadowProductionVariants: shadow variants are not supported yet")
        return self


# -- Endpoint ------------------------------------------------------------------------------------------------
class CapacitySizeSpec(_Shape):
    Type: Literal["INSTANCE_COUNT", "CAPACITY_PERCENT"]
    Value: Annotated[int, Field(ge=1)]


class TrafficRoutingConfigurationSpec(_Shape):
    Type: Literal["ALL_AT_ONCE", "CANARY", "LINEAR"]
    WaitIntervalInSeconds: Annotated[float, Field(ge=0, le=3600)] = 0
    CanarySize: CapacitySizeSpec | None = None
    LinearStepSize: CapacitySizeSpec | None = None

    @model_validator(mode="after")
    def _sizes(self) -> TrafficRoutingConfigurationSpec:
        if self.Type == "CANARY" and self.CanarySize is None:
            raise ValueError(
                "CanarySize is required for CANARY traffic routing, e.g. {Type: CAPACITY_PERCENT, Value: 10}"
            )
        if self.Type == "LINEAR" and self.LinearStepSize is None:
            raise ValueError(
                "LinearStepSize is required for LINEAR traffic routing, e.g. {Type: CAPACITY_PERCENT, Value: 25}"
            )
        if self.CanarySize and self.CanarySize.Type == "CAPACITY_PERCENT" and self.CanarySize.Value > 50:
            raise ValueError("CanarySize: a canary may take at most 50% of the traffic")
        step = self.LinearStepSize
        if step and step.Type == "CAPACITY_PERCENT" and not 10 <= step.Value <= 50:
            raise ValueError("LinearStepSize: a linear step is 10 to 50 percent of the traffic")
        return self


class BlueGreenUpdatePolicySpec(_Shape):
    TrafficRoutingConfiguration: TrafficRoutingConfigurationSpec
    TerminationWaitInSeconds: Annotated[float, Field(ge=0, le=3600)] = 0
    MaximumExecutionTimeoutInSeconds: Annotated[float, Field(ge=600, le=28800)] | None = None


AlarmMetric = Literal["Invocation5XXErrorRate", "Invocation4XXErrorRate", "ModelLatencyP99", "ModelLatencyP50"]


class AlarmSpec(_Shape):
    AlarmName: Annotated[str, Field(min_length=1, max_length=255)]
    #: *kamado extension*: kamado computes its alarms itself from the router's figures for the NEW fleet.
    #: Error rates are fractions (0.01 = 1%); latencies are milliseconds.
    Metric: AlarmMetric | None = None
    Threshold: Annotated[float, Field(ge=0)] | None = None
    #: Trailing window the metric is computed over, in seconds.
    WindowSeconds: Annotated[float, Field(ge=1, le=300)] = 30
    #: Below this many invocations in the window the alarm cannot fire (one error in two is not a trend).
    MinInvocations: Annotated[int, Field(ge=1)] = 10

    @model_validator(mode="after")
    def _computable(self) -> AlarmSpec:
        if self.Metric is None or self.Threshold is None:
            raise ValueError(
                f"alarm {self.AlarmName!r} needs Metric and Threshold: kamado has no CloudWatch and computes alarms "
                "from its router, e.g. {AlarmName: 'errors', Metric: 'Invocation5XXErrorRate', Threshold: 0.01}"
            )
        return self


class AutoRollbackConfigurationSpec(_Shape):
    Alarms: Annotated[list[AlarmSpec], Field(min_length=1, max_length=10)]


class DeploymentConfigSpec(_Shape):
    BlueGreenUpdatePolicy: BlueGreenUpdatePolicySpec | None = None
    RollingUpdatePolicy: dict[str, Any] | None = None
    AutoRollbackConfiguration: AutoRollbackConfigurationSpec | None = None

    @model_validator(mode="after")
    def _supported(self) -> DeploymentConfigSpec:
        if self.RollingUpdatePolicy is not None:
            raise ValueError("RollingUpdatePolicy: rolling updates are not supported yet; use BlueGreenUpdatePolicy")
        return self


class CreateEndpointRequest(_Shape):
    EndpointName: Name
    EndpointConfigName: Name
    DeploymentConfig: DeploymentConfigSpec | None = None
    Tags: Annotated[list[Tag], Field(max_length=50)] = []


class VariantPropertyTypeSpec(_Shape):
    VariantPropertyType: Literal["DesiredInstanceCount", "DesiredWeight", "DataCaptureConfig"]


class UpdateEndpointRequest(_Shape):
    EndpointConfigName: Name
    RetainAllVariantProperties: bool = False
    ExcludeRetainedVariantProperties: Annotated[list[VariantPropertyTypeSpec], Field(max_length=3)] = []
    DeploymentConfig: DeploymentConfigSpec | None = None
    RetainDeploymentConfig: bool = False


class DesiredWeightAndCapacity(_Shape):
    VariantName: Name
    DesiredWeight: Annotated[float, Field(ge=0)] | None = None
    DesiredInstanceCount: Annotated[int, Field(ge=0, le=64)] | None = None


class UpdateEndpointWeightsAndCapacitiesRequest(_Shape):
    DesiredWeightsAndCapacities: Annotated[list[DesiredWeightAndCapacity], Field(min_length=1, max_length=10)]


class ScalingPolicy(_Shape):
    """Target tracking on a variant, as Application Auto Scaling's RegisterScalableTarget plus a
    TargetTrackingScaling policy on ``SageMakerVariantInvocationsPerInstance`` say it, in one document."""

    MinCapacity: Annotated[int, Field(ge=0, le=64)] = 1
    MaxCapacity: Annotated[int, Field(ge=1, le=64)]
    #: Invocations per instance per minute to hold each instance at.
    TargetValue: Annotated[float, Field(gt=0)]
    ScaleOutCooldown: Annotated[float, Field(ge=0, le=3600)] = 60
    ScaleInCooldown: Annotated[float, Field(ge=0, le=86400)] = 300
    DisableScaleIn: bool = False
    #: *kamado extension*: also scale out while the variant's p99 model latency is above this.
    TargetModelLatencyP99Ms: Annotated[float, Field(gt=0)] | None = None
    #: *kamado extension*: the trailing window the scale-out decision looks at (scale-in looks at the
    #: whole ScaleInCooldown, at most 300 s).
    EvaluationWindowSeconds: Annotated[float, Field(ge=1, le=300)] = 5

    @model_validator(mode="after")
    def _bounds(self) -> ScalingPolicy:
        if self.MinCapacity > self.MaxCapacity:
            raise ValueError(f"MinCapacity ({self.MinCapacity}) is above MaxCapacity ({self.MaxCapacity})")
        return self
