"""Pipelines: Amazon States Language (Step Functions) state machines.

Part 1 holds the pure interpreter and the definition validator (:mod:`kamado.pipelines.asl`). The durable
runner, the API and the service integrations build on it (see ``docs/pipelines.md``).
"""
