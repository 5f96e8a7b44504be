"""algorithms/lion.py: Lion (arXiv 2302.06675, Algorithm 2) against its box written out, sign(0), the
β1 = β2 reduction, batch dims, and the optional lion-pytorch 0.2.5 cross-check (marked ``crosscheck``)."""

from __future__ import annotations

import pytest
import torch

import algorithms

from ..helpers import grad_stream, max_rel_err

SHAPES = [(7, 5), (13,), ()]
F64 = torch.float64


def params(seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(s, generator=gen, dtype=F64) for s in SHAPES]


@pytest.mark.parametrize("wd", [0.0, 0.3])
@pytest.mark.parametrize("betas", [(0.9, 0.99), (0.0, 0.5), (0.95, 0.98)])
def test_matches_algorithm_2_written_out(betas, wd):
    b1, b2 = betas
    lr = 1e-2
    base = params()
    ours = [p.clone().requires_grad_() for p in base]
    opt = algorithms.make("lion", ours, lr=lr, betas=betas, weight_decay=wd)
    x = [p.clone() for p in base]
    m = [torch.zeros_like(p) for p in base]
    for grads in grad_stream(SHAPES, 40, torch.Generator().manual_seed(1)):
        for p, g in zip(ours, grads):
            p.grad = g.clone()
        opt.step()
        for i, g in enumerate(grads):
            c = b1 * m[i] + (1 - b1) * g
            x[i] = x[i] - lr * (torch.sign(c) + wd * x[i])
            m[i] = b2 * m[i] + (1 - b2) * g
    for p, r in zip(ours, x):
        assert max_rel_err(p, r) <= 1e-12


def test_sign_of_zero_is_zero():
    p = torch.ones(4, dtype=F64, requires_grad=True)
    opt = algorithms.make("lion", [p], lr=0.1)
    p.grad = torch.tensor([0.0, 1.0, -1.0, 0.0], dtype=F64)
    opt.step()
    assert p.tolist() == [1.0, 0.9, 1.1, 1.0]


def test_equal_betas_is_sign_of_the_ema():
    """β1 = β2 = β: the update is sign(β m_{t-1} + (1−β) g_t) = sign(m_t), signSGD on an EMA (Signum)."""
    base = params(2)
    ours = [p.clone().requires_grad_() for p in base]
    opt = algorithms.make("lion", ours, lr=1e-2, betas=(0.8, 0.8))
    x = [p.clone() for p in base]
    m = [torch.zeros_like(p) for p in base]
    for grads in grad_stream(SHAPES, 20, torch.Generator().manual_seed(3)):
        for p, g in zip(ours, grads):
            p.grad = g.clone()
        opt.step()
        m = [0.8 * mi + 0.2 * g for mi, g in zip(m, grads)]
        x = [xi - 1e-2 * torch.sign(mi) for xi, mi in zip(x, m)]
    for p, r in zip(ours, x):
        assert max_rel_err(p, r) <= 1e-12


def test_batch_dims_equal_separate_runs():
    gen = torch.Generator().manual_seed(4)
    base = torch.randn(3, 6, 4, generator=gen, dtype=F64)
    stream = [torch.randn(3, 6, 4, generator=gen, dtype=F64) for _ in range(10)]
    batched = base.clone().requires_grad_()
    opt = algorithms.make("lion", [batched], lr=1e-2, weight_decay=0.1, batch_dims=1)
    for g in stream:
        batched.grad = g.clone()
        opt.step()
    for s in range(3):
        single = base[s].clone().requires_grad_()
        o = algorithms.make("lion", [single], lr=1e-2, weight_decay=0.1)
        for g in stream:
            single.grad = g[s].clone()
            o.step()
        assert torch.equal(batched[s], single)


@pytest.mark.crosscheck
@pytest.mark.parametrize("wd", [0.0, 0.2])
@pytest.mark.parametrize("dtype", [torch.float32, F64], ids=["f32", "f64"])
def test_crosscheck_lion_pytorch(dtype, wd):
    """lion-pytorch 0.2.5 (bitsandbytes' trusted Lion reference), ``decoupled_weight_decay=False``.

    Its conventions, checked here: decay x·(1 − lr·λ) *before* the sign step (= Algorithm 2's
    λx_{t−1}), ``sgn`` so sign(0) = 0. Same arithmetic in the same dtype, so the parameters agree
    exactly. Its ``decoupled_weight_decay=True`` divides λ by the initial lr (asserted below).
    """
    lion_pytorch = pytest.importorskip("lion_pytorch")
    base = [p.to(dtype) for p in params(5)]
    a = [p.clone().requires_grad_() for p in base]
    b = [p.clone().requires_grad_() for p in base]
    c = [p.clone().requires_grad_() for p in base]
    ours = algorithms.make("lion", a, lr=3e-3, betas=(0.9, 0.99), weight_decay=wd)
    theirs = lion_pytorch.Lion(b, lr=3e-3, betas=(0.9, 0.99), weight_decay=wd)
    fully = lion_pytorch.Lion(c, lr=3e-3, betas=(0.9, 0.99), weight_decay=wd * 3e-3, decoupled_weight_decay=True)
    for grads in grad_stream(SHAPES, 50, torch.Generator().manual_seed(6), dtype=dtype):
        grads[0][0, 0] = 0.0  # exercise sign(0)
        for ps in (a, b, c):
            for p, g in zip(ps, grads):
                p.grad = g.clone()
        ours.step()
        theirs.step()
        fully.step()
    tol = 1e-12 if dtype == F64 else 1e-6  # λ·lr/lr rounds differently from λ
    for p, q, r in zip(a, b, c):
        assert torch.equal(p, q)
        assert max_rel_err(p, r) <= tol
