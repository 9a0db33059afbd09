"""Hosting: models, endpoint configs and endpoints; the model server, the router, deployments,
autoscaling and data capture (SageMaker's real-time inference, on your own machines)."""
