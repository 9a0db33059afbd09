"""kamado.store."""
