"""algorithms/sgd.py: exact reductions to torch.optim.SGD and the EMA-momentum closed form."""

from __future__ import annotations

import pytest
import torch

import algorithms

from ..helpers import grad_stream, max_rel_err

SHAPES = [(6, 4), (9,)]


@pytest.mark.parametrize(
    "kw",
    [
        dict(lr=0.1),
        dict(lr=0.1, momentum=0.9),
        dict(lr=0.05, momentum=0.5, dampening=0.2, weight_decay=0.01),
    ],
)
def test_equals_torch_sgd(kw):
    gen = torch.Generator().manual_seed(0)
    base = [torch.randn(s, generator=gen, dtype=torch.float64) for s in SHAPES]
    a = [p.clone().requires_grad_() for p in base]
    b = [p.clone().requires_grad_() for p in base]
    ours, theirs = algorithms.make("sgd", a, **kw), torch.optim.SGD(b, foreach=False, **kw)
    for grads in grad_stream(SHAPES, 30, gen):
        for p, q, g in zip(a, b, grads):
            p.grad, q.grad = g.clone(), g.clone()
        ours.step()
        theirs.step()
    for p, q in zip(a, b):
        assert max_rel_err(p, q) <= 1e-13


@pytest.mark.parametrize("bias_correction", [False, True])
def test_ema_momentum_closed_form(bias_correction):
    """m_t = β m_{t-1} + (1-β) g_t, x ← x − η m_t (/(1-β^t) with bias correction)."""
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(5, generator=gen, dtype=torch.float64).requires_grad_()
    ref = x.detach().clone()
    m = torch.zeros_like(ref)
    beta, lr = 0.8, 0.3
    opt = algorithms.make("sgd", [x], lr=lr, momentum=beta, momentum_type="ema", bias_correction=bias_correction)
    for t in range(1, 12):
        g = torch.randn(5, generator=gen, dtype=torch.float64)
        x.grad = g.clone()
        opt.step()
        m = beta * m + (1 - beta) * g
        ref = ref - lr * (m / (1 - beta**t) if bias_correction else m)
        assert max_rel_err(x, ref) <= 1e-13
