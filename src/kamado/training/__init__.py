"""kamado.training."""
