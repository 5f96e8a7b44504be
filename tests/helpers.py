"""Small helpers shared by the tests."""

from __future__ import annotations

import torch


def max_rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a − b| / max(max |b|, tiny): a relative error robust to entries near zero."""
    a = a.detach()
    b = b.detach()
    scale = b.abs().max().clamp_min(torch.finfo(b.dtype).tiny)
    return float((a - b).abs().max() / scale) if a.numel() else 0.0


def grad_stream(shapes, steps, generator, dtype=torch.float64):
    """Yield ``steps`` lists of random gradients with the given shapes."""
    for _ in range(steps):
        yield [torch.randn(s, generator=generator, dtype=dtype) for s in shapes]
