"""Batch-invariant primitives, and the facts about torch's CPU kernels that bit-identity relies on.

If one of the ``test_kernel_*`` tests fails on some build, a seed run alone may differ from the same
seed inside a batch on that build; the runner's bit-identity tests would fail too.
"""

from __future__ import annotations

import pytest
import torch

from synthetic._invariant import MATMUL_ROWS, SUM_BLOCK, batched_matmul_left, batched_matmul_right, row_matmul, rowsum


def _rows_equal(fn, x, rows=(0, 1, 5)):
    full = fn(x)
    return all(torch.equal(full[r : r + 1], fn(x[r : r + 1].clone())) for r in rows)


@pytest.mark.parametrize("name, fn", [
    ("log1p", lambda t: torch.log1p(t * t)), ("cos", torch.cos), ("sin", torch.sin), ("exp", lambda t: torch.exp(-t * t)),
    ("sqrt", lambda t: t.abs().sqrt()), ("div", lambda t: t / (1 + t * t)),
    ("lerp", lambda t: torch.zeros_like(t).lerp_(t, 0.1)), ("addcmul", lambda t: torch.ones_like(t).addcmul_(t, t, value=0.3)),
])
def test_kernel_elementwise_ops_are_position_invariant(name, fn):
    """Vectorised bodies and scalar tails round alike: a row alone equals the row inside a batch."""
    x = torch.randn(37, 1003, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    assert _rows_equal(fn, x, rows=(0, 1, 17, 36))


def test_kernel_short_row_reductions_are_batch_invariant():
    x = torch.randn(33, SUM_BLOCK, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    assert _rows_equal(lambda t: t.sum(-1), x)


def test_rowsum_is_batch_invariant_for_long_rows_and_equals_sum(two_threads):
    x = torch.randn(5, 100_003, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    assert _rows_equal(lambda t: rowsum(t, 1), x, rows=(0, 4))
    assert torch.allclose(rowsum(x, 1), x.sum(-1), rtol=1e-13, atol=0)
    m = torch.randn(3, 4, 5, dtype=torch.float64)
    assert torch.allclose(rowsum(m, 2), m.sum((1, 2)), rtol=1e-15, atol=0)
    assert torch.equal(rowsum(torch.ones(2, 0), 1), torch.zeros(2, dtype=torch.float32))


@pytest.mark.parametrize("k, n", [(1000, 1000), (10, 20_000), (20_000, 10), (48, 32), (1, 3)])
def test_row_matmul_rows_are_independent_of_batch_and_position(k, n):
    g = torch.Generator().manual_seed(k + n)
    m = torch.randn(k, n, dtype=torch.float64, generator=g)
    x = torch.randn(2 * MATMUL_ROWS + 3, k, dtype=torch.float64, generator=g)
    full = row_matmul(x, m)
    assert _rows_equal(lambda t: row_matmul(t, m), x, rows=(0, MATMUL_ROWS, x.shape[0] - 1))
    perm = torch.randperm(x.shape[0], generator=g)
    assert torch.equal(row_matmul(x[perm], m), full[perm])
    assert torch.allclose(full, x @ m, rtol=1e-12, atol=1e-12 * float((x.abs() @ m.abs()).max()))


def test_left_and_right_products_on_batches():
    g = torch.Generator().manual_seed(3)
    b = torch.randn(6, 6, dtype=torch.float64, generator=g)
    c = torch.randn(4, 5, dtype=torch.float64, generator=g)
    w = torch.randn(9, 6, 4, dtype=torch.float64, generator=g)
    assert torch.allclose(batched_matmul_left(b, w), b @ w, rtol=1e-13, atol=1e-13)
    assert torch.allclose(batched_matmul_right(w, c), w @ c, rtol=1e-13, atol=1e-13)
    assert _rows_equal(lambda t: batched_matmul_right(batched_matmul_left(b, t), c), w, rows=(0, 8))


def test_plain_long_reduction_is_not_batch_invariant_on_two_threads(two_threads):
    """Why rowsum exists (and the runner pads a lone seed): one long row is split across threads."""
    x = torch.randn(8, 200_003, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    assert not _rows_equal(lambda t: t.sum(-1), x, rows=range(8))  # some row rounds differently (deterministic)
