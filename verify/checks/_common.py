"""Helpers shared by the identity checks of :mod:`verify.checks` (no checks of its own)."""

from __future__ import annotations

import algorithms
from verify.oracle import relative_error

__all__ = ["quick_steps", "registered", "relative_error"]


def quick_steps(quick: bool) -> int:
    """Steps of an identity run: 20 in the quick suite, 100 otherwise."""
    return 20 if quick else 100


def registered(name: str):
    """A factory ``(params, **kwargs) -> algorithms.make(name, ...)``, named after the registry entry."""
    def factory(params, **kwargs):
        return algorithms.make(name, params, **kwargs)

    factory.__qualname__ = name
    return factory
