"""kamado.api."""
