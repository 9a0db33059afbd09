"""Resource routes, one module per capability."""
