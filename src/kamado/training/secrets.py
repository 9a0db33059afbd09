"""Kept for imports of the training-only seam: the protocol now lives in :mod:`kamado.core.secret_hooks`."""

from __future__ import annotations

from kamado.core.secret_hooks import SecretHooks

__all__ = ["SecretHooks"]
