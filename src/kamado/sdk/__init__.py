"""kamado.sdk."""
