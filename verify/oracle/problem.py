"""The parameters the oracle optimizes: shapes, names and initial values.

The default shapes hold one parameter of every kind a model has and the references treat
differently: a tall, a wide and a square matrix (projected methods project the smaller side; square
matrices follow each variant's side rule), a 3-D tensor (a conv kernel: dense for GaLore/Fira, the
AdamW fallback under MARS's official routing), a vector and a scalar. The smallest matrix side is 16,
so every registered reference runs on them once its rank is fitted (:mod:`verify.oracle.settings`).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

from .errors import OracleInputError

__all__ = ["DEFAULT_SHAPES", "check_shapes", "parse_shapes", "param_names", "initial_values", "smallest_matrix_side"]

DEFAULT_SHAPES: tuple[tuple[int, ...], ...] = ((24, 16), (16, 24), (20, 20), (4, 3, 5), (17,), ())


def check_shapes(shapes: Sequence[Sequence[int]], option: str = "shapes") -> tuple[tuple[int, ...], ...]:
    """Validated shapes: at least one, every size a positive int (an empty tensor compares nothing)."""
    try:
        checked = tuple(tuple(int(d) for d in s) for s in shapes)
    except (TypeError, ValueError):
        raise OracleInputError(f"{option}: expected a list of integer tuples, got {shapes!r}") from None
    if not checked:
        raise OracleInputError(f"{option}: give at least one shape (an empty problem compares nothing)")
    for s in checked:
        if any(d < 1 for d in s):
            raise OracleInputError(f"{option}: every size must be >= 1 (a zero-size tensor compares nothing), got {s}")
    return checked


def parse_shapes(text: str) -> tuple[tuple[int, ...], ...]:
    """``"24x16,17,0d"`` -> ``((24, 16), (17,), ())`` (``0d`` or ``scalar`` is a 0-D tensor)."""
    shapes = []
    for item in text.split(","):
        item = item.strip().lower()
        if not item:
            continue
        if item in ("0d", "scalar"):
            shapes.append(())
            continue
        try:
            shapes.append(tuple(int(x) for x in item.split("x")))
        except ValueError:
            raise OracleInputError(
                f"--shapes: cannot read {item!r}; write sizes joined by 'x' and shapes by ',', e.g. 24x16,17,0d"
            ) from None
    return check_shapes(shapes, "--shapes")


def _kind(shape: tuple[int, ...]) -> str:
    if len(shape) == 0:
        return "scalar"
    if len(shape) == 1:
        return "vector"
    if len(shape) == 2:
        m, n = shape
        return "tall" if m > n else "wide" if m < n else "square"
    return "tensor"


def param_names(shapes: Sequence[tuple[int, ...]]) -> list[str]:
    """A readable name per parameter (``tall``, ``wide``, ``square``, ``tensor``, ``vector``, ``scalar``;
    repeated kinds get their index, e.g. ``vector_4``)."""
    kinds = [_kind(tuple(s)) for s in shapes]
    return [k if kinds.count(k) == 1 else f"{k}_{i}" for i, k in enumerate(kinds)]


def initial_values(shapes: Sequence[tuple[int, ...]], seed: int, dtype: torch.dtype) -> list[torch.Tensor]:
    """Standard normal starting points in float64, rounded through ``dtype`` so both sides start equal."""
    gen = torch.Generator().manual_seed(seed)
    init = [torch.randn(s, generator=gen, dtype=torch.float64) for s in shapes]
    return [x.to(dtype).to(torch.float64) for x in init]


def smallest_matrix_side(shapes: Sequence[tuple[int, ...]]) -> int | None:
    """The smallest side of the 2-D shapes (the largest rank a projected method can take), or None."""
    sides = [min(s) for s in shapes if len(s) == 2]
    return min(sides) if sides else None


def numel(shape: tuple[int, ...]) -> int:
    return math.prod(shape)
