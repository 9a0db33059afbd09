"""Batch transform: CreateTransformJob and the reconciler that runs model servers over input objects."""
