"""The weekly retrain pipeline of ``pipeline.asl.json``, written in Python with ``kamado.workflow``.

Both compile to the same definition (the test suite checks it), so pick whichever reads better to you.
Run it with ``python pipeline.py`` against a server that has the ``evaluate`` function and the endpoint.
"""

from __future__ import annotations

from kamado.workflow import (
    Choice,
    CreateEndpointConfig,
    CreateModel,
    FunctionTask,
    Succeed,
    TrainingJob,
    UpdateEndpoint,
    Var,
    Workflow,
)


def _named(suffix: str) -> str:
    return f"States.Format('{{}}-{suffix}', $.version)"


train = TrainingJob(
    "Train",
    {
        "TrainingJobName.$": _named("train"),
        "AlgorithmSpecification": {
            "MetricDefinitions": [{"Name": "validation:accuracy", "Regex": "validation:accuracy=([0-9.]+)"}]
        },
        "HyperParameters": {
            "sagemaker_program": '"train.py"',
            "sagemaker_submit_directory.$": "States.JsonToString($.code)",
        },
        "InputDataConfig": [{"ChannelName": "train", "DataSource": {"S3DataSource": {"S3Uri.$": "$.data"}}}],
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
    },
    result_selector={
        "name.$": "$.TrainingJobName",
        "model.$": "$.ModelArtifacts.S3ModelArtifacts",
        "metrics.$": "$.FinalMetricDataList",
    },
    result_path="$.train",
)

evaluate = FunctionTask(
    "Evaluate",
    "evaluate",
    payload={"metrics.$": "$.train.metrics", "threshold.$": "$.threshold"},
    result_selector={"accuracy.$": "$.Payload.accuracy", "better.$": "$.Payload.better"},
    result_path="$.score",
).retry(["Lambda.ServiceException"], interval_s=1, max_attempts=3)

create_model = CreateModel(
    "CreateModel",
    {
        "ModelName.$": _named("model"),
        "PrimaryContainer": {
            "ModelDataUrl.$": "$.train.model",
            "Environment": {"SAGEMAKER_PROGRAM": "train.py", "SAGEMAKER_SUBMIT_DIRECTORY.$": "$.code"},
        },
    },
    result_path=None,
)

create_config = CreateEndpointConfig(
    "CreateEndpointConfig",
    {
        "EndpointConfigName.$": _named("config"),
        "ProductionVariants": [
            {
                "VariantName": "AllTraffic",
                "ModelName.$": _named("model"),
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
            }
        ],
    },
    result_path=None,
)

canary = UpdateEndpoint(
    "CanaryUpdate",
    {
        "EndpointName.$": "$.endpoint",
        "EndpointConfigName.$": _named("config"),
        "DeploymentConfig": {
            "BlueGreenUpdatePolicy": {
                "TrafficRoutingConfiguration": {
                    "Type": "CANARY",
                    "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 50},
                    "WaitIntervalInSeconds": 1,
                },
                "TerminationWaitInSeconds": 0,
            }
        },
    },
    sync=True,
    result_selector={"status.$": "$.EndpointStatus", "config.$": "$.EndpointConfigName"},
    result_path="$.deployed",
)

gate = Choice("Better?").when(Var("$.score.better") == True, create_model >> create_config >> canary)  # noqa: E712
gate.otherwise(Succeed("KeepCurrent"))

workflow = Workflow(
    "weekly-retrain",
    train >> evaluate >> gate,
    comment="Weekly retrain: train, evaluate, and if the model is good enough roll it out as a canary.",
)

if __name__ == "__main__":
    print(workflow.to_json())
