"""Shared foundations: errors, names, settings and clocks. Imports nothing else from kamado."""
