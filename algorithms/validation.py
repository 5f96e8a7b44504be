"""Hyperparameter validation shared by every optimizer.

Each checker raises ``TypeError`` for a value of the wrong type and ``ValueError`` for a value
outside its range; the message names the argument and states the allowed range, e.g.
``ValueError: lr must be >= 0, got -0.1``.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Iterable

__all__ = [
    "check_real",
    "check_nonnegative",
    "check_positive",
    "check_unit_interval",
    "check_beta",
    "check_int",
    "check_choice",
    "check_bool",
]


def check_real(name: str, value: Any) -> float:
    """Return ``value`` as a finite float, or raise TypeError/ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        # A 0-d tensor lr is accepted (torch.optim allows it); anything else is a type error.
        try:
            import torch

            if isinstance(value, torch.Tensor) and value.numel() == 1 and not value.is_complex():
                value = float(value)
            else:
                raise TypeError
        except TypeError:
            raise TypeError(f"{name} must be a real number, got {type(value).__name__}") from None
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


def check_nonnegative(name: str, value: Any) -> float:
    value = check_real(name, value)
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return value


def check_positive(name: str, value: Any) -> float:
    value = check_real(name, value)
    if value <= 0:
        raise ValueError(f"{name} must be > 0, got {value}")
    return value


def check_unit_interval(name: str, value: Any, *, closed_right: bool = True, closed_left: bool = True) -> float:
    """Check ``value`` in [0, 1] (ends open or closed as asked)."""
    value = check_real(name, value)
    lo_ok = value >= 0 if closed_left else value > 0
    hi_ok = value <= 1 if closed_right else value < 1
    if not (lo_ok and hi_ok):
        lb = "[" if closed_left else "("
        rb = "]" if closed_right else ")"
        raise ValueError(f"{name} must be in {lb}0, 1{rb}, got {value}")
    return value


def check_beta(name: str, value: Any, *, allow_one: bool = False) -> float:
    """A momentum/EMA coefficient: [0, 1), or [0, 1] when ``allow_one`` (pure accumulation)."""
    return check_unit_interval(name, value, closed_right=allow_one)


def check_int(name: str, value: Any, *, minimum: int | None = None, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}")
    return value


def check_choice(name: str, value: Any, choices: Iterable[Any]) -> Any:
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value


def check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__}")
    return value
