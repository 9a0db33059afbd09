"""kamado.cli."""
