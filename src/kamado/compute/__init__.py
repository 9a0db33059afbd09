"""Executors: the only code that starts processes. Everything above speaks TaskSpec."""
