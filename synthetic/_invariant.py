r"""Batch-invariant primitives: a seed's numbers never depend on how many seeds share the batch.

The synthetic problems are evaluated on ``[S, ...]`` tensors, one row per seed, and a row must come
out **bit-identical** whatever ``S`` is (a seed run alone equals the same seed inside a batch). On
CPU, elementwise torch kernels have this property (their vectorised and tail paths round alike;
checked in tests/synthetic/test_invariant.py), but two common operations do not:

* **Long reductions.** ``x.sum(-1)`` on a single row longer than the parallel grain (32768 elements)
  is split across threads, so its rounding differs from the same row inside a batch of several rows.
  :func:`rowsum` sums fixed blocks of :data:`SUM_BLOCK` elements, then the block sums, so every row is
  reduced by the same sequence of short, single-threaded reductions.
* **Matrix products with a shared operand.** ``X @ M`` with ``X`` of shape ``[S, k]`` is one GEMM
  whose kernel (GEMV for one row, blocked GEMM otherwise) and blocking depend on ``S``.
  :func:`row_matmul` multiplies fixed chunks of :data:`MATMUL_ROWS` rows (the last chunk padded with
  zero rows), so every row is produced by a GEMM of one and the same shape and memory layout (both
  operands are made contiguous: a transposed operand selects another kernel). Within one GEMM shape a
  row's result does not depend on its position or on the other rows (again checked in the tests).

These are facts about the CPU kernels of the installed torch/MKL build, not guarantees of the
library; the tests re-check them so that a build where they fail is noticed.
"""

from __future__ import annotations

import math

import torch

__all__ = ["SUM_BLOCK", "MATMUL_ROWS", "rowsum", "row_matmul", "batched_matmul_right", "batched_matmul_left"]

#: length of the blocks :func:`rowsum` reduces first (well below torch's parallel grain of 32768)
SUM_BLOCK = 4096
#: number of rows per GEMM in :func:`row_matmul`
MATMUL_ROWS = 16


def rowsum(x: torch.Tensor, ndim: int) -> torch.Tensor:
    """Sum over the trailing ``ndim`` dimensions, the same way for every leading index.

    ``x`` has shape ``[*lead, *trailing]``; the result has shape ``lead``.
    """
    lead = x.shape[: x.dim() - ndim]
    flat = x.reshape(*lead, -1) if ndim else x.unsqueeze(-1)
    while flat.shape[-1] > SUM_BLOCK:
        n = flat.shape[-1]
        blocks = math.ceil(n / SUM_BLOCK)
        if blocks * SUM_BLOCK != n:
            flat = torch.nn.functional.pad(flat, (0, blocks * SUM_BLOCK - n))
        flat = flat.reshape(*lead, blocks, SUM_BLOCK).sum(-1)
    return flat.sum(-1)


def row_matmul(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """``x @ m`` for ``x`` of shape ``[R, k]`` and a shared ``m`` of shape ``[k, n]``, row by row invariant."""
    x = x.contiguous()
    m = m.contiguous()
    rows = x.shape[0]
    if rows == 0:
        return x.new_zeros(0, m.shape[1])
    pad = (-rows) % MATMUL_ROWS
    if pad:
        x = torch.cat([x, x.new_zeros(pad, x.shape[1])])
    chunks = [x[i : i + MATMUL_ROWS] @ m for i in range(0, rows + pad, MATMUL_ROWS)]
    out = torch.cat(chunks) if len(chunks) > 1 else chunks[0]
    return out[:rows]


def batched_matmul_right(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """``x @ m`` for ``x`` of shape ``[..., p, k]`` (or ``[..., k]``) and a shared ``m`` of shape ``[k, n]``."""
    lead = x.shape[:-1]
    out = row_matmul(x.reshape(-1, x.shape[-1]), m)
    return out.reshape(*lead, m.shape[1])


def batched_matmul_left(m: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``m @ x`` for a shared ``m`` of shape ``[p, k]`` and ``x`` of shape ``[..., k, n]``."""
    return batched_matmul_right(x.transpose(-1, -2), m.transpose(0, 1)).transpose(-1, -2)
