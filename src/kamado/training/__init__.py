"""Training jobs: the SageMaker script-mode contract, runner, metrics from logs, lineage, retries."""
