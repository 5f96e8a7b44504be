"""algorithms/adagrad_norm.py: the group (theory) and tensor scopes."""

from __future__ import annotations

import math

import pytest
import torch

import algorithms

from ..helpers import max_rel_err

SHAPES = [(4, 3), (5,), (), (2, 3, 2)]


def start(seed=3):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(s, generator=g, dtype=torch.float64) for s in SHAPES]


def grads(steps, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [[torch.randn(s, generator=g, dtype=torch.float64) for s in SHAPES] for _ in range(steps)]


def test_group_scope_is_adagrad_norm_on_the_concatenation():
    kw = dict(lr=0.3, b0=0.2, eps=1e-7, weight_decay=0.05)
    params = [p.clone().requires_grad_() for p in start()]
    opt = algorithms.make("adagrad_norm", params, **kw)
    flat = torch.cat([p.reshape(-1) for p in start()]).requires_grad_()
    ref = algorithms.make("adagrad_norm", [flat], **kw)
    for gs in grads(20):
        for p, g in zip(params, gs):
            p.grad = g
        flat.grad = torch.cat([g.reshape(-1) for g in gs])
        opt.step()
        ref.step()
    assert max_rel_err(torch.cat([p.reshape(-1) for p in params]), flat) <= 1e-12
    copies = [opt.state[p]["sum_sq"] for p in params]
    assert all(torch.equal(c, copies[0]) for c in copies)


def test_closed_form_first_steps():
    x0 = torch.tensor([3.0, -4.0], dtype=torch.float64)
    y0 = torch.tensor([[1.0]], dtype=torch.float64)
    x, y = x0.clone().requires_grad_(), y0.clone().requires_grad_()
    opt = algorithms.make("adagrad_norm", [x, y], lr=0.5, b0=1.0)
    gx, gy = torch.tensor([0.6, 0.8], dtype=torch.float64), torch.tensor([[2.0]], dtype=torch.float64)
    x.grad, y.grad = gx.clone(), gy.clone()
    opt.step()
    b = math.sqrt(1.0 + 1.0 + 4.0)  # b0² + ‖gx‖² + ‖gy‖²
    assert max_rel_err(x, x0 - 0.5 * gx / b) <= 1e-15
    assert max_rel_err(y, y0 - 0.5 * gy / b) <= 1e-15


def test_none_grad_keeps_the_shared_accumulator_consistent():
    a = torch.ones(3, dtype=torch.float64, requires_grad=True)
    b = torch.ones(2, dtype=torch.float64, requires_grad=True)
    opt = algorithms.make("adagrad_norm", [a, b], lr=0.1, b0=1.0)
    a.grad, b.grad = torch.ones(3, dtype=torch.float64), torch.ones(2, dtype=torch.float64)
    opt.step()  # b² = 1 + 3 + 2
    b_before = b.detach().clone()
    a.grad, b.grad = torch.full((3,), 2.0, dtype=torch.float64), None
    opt.step()  # b² = 6 + 12, and b's copy follows although b is not stepped
    assert torch.equal(b, b_before)
    assert float(opt.state[a]["sum_sq"]) == 18.0 and float(opt.state[b]["sum_sq"]) == 18.0
    assert int(opt.state[a]["step"]) == 2 and int(opt.state[b]["step"]) == 1


def test_tensor_scope_keeps_one_accumulator_per_tensor():
    params = [p.clone().requires_grad_() for p in start()]
    opt = algorithms.make("adagrad_norm", params, lr=0.3, scope="tensor")
    for gs in grads(3):
        for p, g in zip(params, gs):
            p.grad = g
        opt.step()
    g3 = grads(3)
    for k, p in enumerate(params):
        expected = 1e-4 + sum(float((gs[k] ** 2).sum()) for gs in g3)
        assert math.isclose(float(opt.state[p]["sum_sq"]), expected, rel_tol=1e-13)


def test_group_scope_rejects_mixed_dtypes_or_batch_shapes():
    with pytest.raises(ValueError, match="scope='group'"):
        algorithms.make("adagrad_norm", [torch.zeros(3, requires_grad=True), torch.zeros(3, dtype=torch.float64, requires_grad=True)])
    with pytest.raises(ValueError, match="batch shape"):
        algorithms.make("adagrad_norm", [torch.zeros(2, 3, requires_grad=True), torch.zeros(4, 3, requires_grad=True)], batch_dims=1)
    algorithms.make("adagrad_norm", [torch.zeros(3, requires_grad=True), torch.zeros(3, dtype=torch.float64, requires_grad=True)],
                    scope="tensor")


def test_batch_dims_group_scope_equals_separate_runs():
    gen = torch.Generator().manual_seed(5)
    x0, y0 = torch.randn(4, 3, 2, generator=gen, dtype=torch.float64), torch.randn(4, 5, generator=gen, dtype=torch.float64)
    gs = [(torch.randn(4, 3, 2, generator=gen, dtype=torch.float64), torch.randn(4, 5, generator=gen, dtype=torch.float64))
          for _ in range(5)]
    xb, yb = x0.clone().requires_grad_(), y0.clone().requires_grad_()
    opt = algorithms.make("adagrad_norm", [xb, yb], lr=0.2, batch_dims=1)
    for gx, gy in gs:
        xb.grad, yb.grad = gx.clone(), gy.clone()
        opt.step()
    for s in range(4):
        xs, ys = x0[s].clone().requires_grad_(), y0[s].clone().requires_grad_()
        o = algorithms.make("adagrad_norm", [xs, ys], lr=0.2)
        for gx, gy in gs:
            xs.grad, ys.grad = gx[s].clone(), gy[s].clone()
            o.step()
        assert torch.equal(xs, xb[s]) and torch.equal(ys, yb[s])
