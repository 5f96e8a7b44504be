"""Name -> optimizer class registry. Classes join it with the :func:`register` decorator."""

from __future__ import annotations

from typing import Any, Iterable

REGISTRY: dict[str, type] = {}


def register(name: str):
    """Class decorator: add an optimizer class to :data:`REGISTRY` under ``name`` (unique)."""

    def decorate(cls):
        if name in REGISTRY and REGISTRY[name] is not cls:
            raise ValueError(f"optimizer name {name!r} is already registered to {REGISTRY[name].__name__}")
        cls.registry_name = name
        REGISTRY[name] = cls
        return cls

    return decorate


def make(name: str, params: Iterable[Any], **hyper: Any):
    """Construct the registered optimizer ``name`` on ``params`` with hyperparameters ``hyper``."""
    try:
        cls = REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown optimizer {name!r}; registered: {sorted(REGISTRY)}") from None
    return cls(params, **hyper)
