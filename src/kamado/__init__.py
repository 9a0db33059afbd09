"""kamado: a self-hostable ML platform with SageMaker-shaped APIs."""

__version__ = "0.1.0"
