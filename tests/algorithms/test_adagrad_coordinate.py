"""algorithms/adagrad_coordinate.py: ≡ torch.optim.Adagrad with matched ε and initial accumulator."""

from __future__ import annotations

import pytest
import torch

import algorithms

from ..helpers import grad_stream, max_rel_err

SHAPES = [(7, 5), (13,), (), (3, 4, 2)]


def start(seed=3):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(s, generator=g, dtype=torch.float64) for s in SHAPES]


def run_pair(ours, theirs, a, b, steps=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    for grads in grad_stream(SHAPES, steps, g):
        for p, q, gr in zip(a, b, grads):
            p.grad, q.grad = gr.clone(), gr.clone()
        ours.step()
        theirs.step()


@pytest.mark.parametrize("variant,b0,eps", [("paper", None, None), ("paper", 0.3, 1e-4), ("official", None, None), ("official", 0.0, 1e-2)])
def test_equals_torch_adagrad(variant, b0, eps):
    defaults = {"paper": (1e-2, 0.0), "official": (0.0, 1e-6)}[variant]
    b0_eff = defaults[0] if b0 is None else b0
    eps_eff = defaults[1] if eps is None else eps
    a = [p.clone().requires_grad_() for p in start()]
    b = [p.clone().requires_grad_() for p in start()]
    ours = algorithms.make("adagrad_coordinate", a, lr=0.05, b0=b0, eps=eps, variant=variant)
    theirs = torch.optim.Adagrad(b, lr=0.05, initial_accumulator_value=b0_eff**2, eps=eps_eff, foreach=False)
    run_pair(ours, theirs, a, b)
    for p, q in zip(a, b):
        assert max_rel_err(p, q) <= 1e-12
        assert max_rel_err(ours.state[p]["sum_sq"], theirs.state[q]["sum"]) <= 1e-12


def test_first_step_places_b0_inside_the_square_root():
    """paper: x1 = x0 - lr g / sqrt(b0² + g²); official: x1 = x0 - lr g / (|g| + eps)."""
    x0 = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    g = torch.tensor([0.3, -4.0, 0.0], dtype=torch.float64)
    for variant, expected in [
        ("paper", x0 - 0.1 * g / torch.sqrt(0.5**2 + g * g)),
        ("official", x0 - 0.1 * g / (g.abs() + 1e-6)),
    ]:
        x = x0.clone().requires_grad_()
        opt = algorithms.make("adagrad_coordinate", [x], lr=0.1, b0=0.5 if variant == "paper" else None, variant=variant)
        x.grad = g.clone()
        opt.step()
        assert max_rel_err(x, expected) <= 1e-15


def test_decoupled_weight_decay_after_the_update():
    x0 = torch.tensor([1.0, -2.0], dtype=torch.float64)
    g = torch.tensor([0.5, 1.0], dtype=torch.float64)
    x = x0.clone().requires_grad_()
    opt = algorithms.make("adagrad_coordinate", [x], lr=0.1, weight_decay=0.2, b0=1.0)
    x.grad = g.clone()
    opt.step()
    y = x0 - 0.1 * g / torch.sqrt(1.0 + g * g)
    assert max_rel_err(x, y - 0.1 * 0.2 * y) <= 1e-15


def test_batch_dims_equals_separate_runs():
    gen = torch.Generator().manual_seed(1)
    x0 = torch.randn(3, 4, 5, generator=gen, dtype=torch.float64)
    grads = [torch.randn(3, 4, 5, generator=gen, dtype=torch.float64) for _ in range(6)]
    xb = x0.clone().requires_grad_()
    opt = algorithms.make("adagrad_coordinate", [xb], lr=0.1, batch_dims=1)
    for g in grads:
        xb.grad = g.clone()
        opt.step()
    for s in range(3):
        xs = x0[s].clone().requires_grad_()
        o = algorithms.make("adagrad_coordinate", [xs], lr=0.1)
        for g in grads:
            xs.grad = g[s].clone()
            o.step()
        assert torch.equal(xs, xb[s])
