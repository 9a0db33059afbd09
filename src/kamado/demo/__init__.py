"""The end-to-end demo behind ``kamado demo`` / ``make demo``."""
