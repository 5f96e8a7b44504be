"""algorithms/adagrad_subset_norm.py: the issue's identities and a hand-written subset loop."""

from __future__ import annotations

import math

import pytest
import torch

import algorithms

from ..helpers import grad_stream, max_rel_err
from .test_subsets import explicit_subsets

SHAPES = [(7, 5), (5, 12), (13,), (3, 4, 2)]


def start(shapes=SHAPES, seed=3):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(s, generator=g, dtype=torch.float64) for s in shapes]


def run(name, kwargs, shapes=SHAPES, steps=30, seed=0):
    params = [p.clone().requires_grad_() for p in start(shapes)]
    opt = algorithms.make(name, params, **kwargs)
    g = torch.Generator().manual_seed(seed)
    for grads in grad_stream(shapes, steps, g):
        for p, gr in zip(params, grads):
            p.grad = gr
        opt.step()
    return params, opt


def reference_subset_adagrad(x0, grads, subsets, lr, b0, eps):
    """Straight from the box: b²_j ← b²_j + Σ_{i∈Ψ_j} g_i², x_i ← x_i − lr g_i / (b_ψ(i) + eps), on flat lists."""
    x = [float(v) for v in x0.reshape(-1)]
    acc = [b0 * b0] * len(subsets)
    for g in grads:
        flat = [float(v) for v in g.reshape(-1)]
        for j, members in enumerate(subsets):
            acc[j] += sum(flat[i] ** 2 for i in members)
        for j, members in enumerate(subsets):
            for i in members:
                x[i] -= lr * flat[i] / (math.sqrt(acc[j]) + eps)
    return torch.tensor(x, dtype=torch.float64).reshape(x0.shape)


@pytest.mark.parametrize("rule", ["heuristics", 4, -2, 1, "norm"], ids=str)
@pytest.mark.parametrize("variant", ["paper", "official"])
def test_matches_the_hand_written_subset_loop(rule, variant):
    shapes = [(6, 4), (4, 9), (12,)]
    params, _ = run("adagrad_subset_norm", {"lr": 0.07, "subset_size": rule, "variant": variant, "subset_fallback": "allow"},
                    shapes, steps=8)
    b0, eps = (1e-2, 0.0) if variant == "paper" else (0.0, 1e-6)
    g = torch.Generator().manual_seed(0)
    grads = list(grad_stream(shapes, 8, g))
    for k, (p, x0) in enumerate(zip(params, start(shapes))):
        ref = reference_subset_adagrad(x0, [gr[k] for gr in grads], explicit_subsets(shapes[k], rule), 0.07, b0, eps)
        assert max_rel_err(p, ref) <= 1e-12


@pytest.mark.parametrize("variant", ["paper", "official"])
def test_subset_size_one_equals_coordinate_and_torch_adagrad(variant):
    ours, _ = run("adagrad_subset_norm", {"lr": 0.05, "subset_size": 1, "variant": variant})
    coord, _ = run("adagrad_coordinate", {"lr": 0.05, "variant": variant})
    b0, eps = (1e-2, 0.0) if variant == "paper" else (0.0, 1e-6)
    theirs = [p.clone().requires_grad_() for p in start()]
    opt = torch.optim.Adagrad(theirs, lr=0.05, initial_accumulator_value=b0 * b0, eps=eps, foreach=False)
    g = torch.Generator().manual_seed(0)
    for grads in grad_stream(SHAPES, 30, g):
        for p, gr in zip(theirs, grads):
            p.grad = gr
        opt.step()
    for a, c, t in zip(ours, coord, theirs):
        assert max_rel_err(a, c) <= 1e-12
        assert max_rel_err(a, t) <= 1e-12


@pytest.mark.parametrize("rule", ["norm", 10**6])
def test_one_subset_equals_adagrad_norm(rule):
    ours, _ = run("adagrad_subset_norm", {"lr": 0.2, "subset_size": rule, "b0": 0.1, "eps": 1e-9})
    per_tensor, _ = run("adagrad_norm", {"lr": 0.2, "scope": "tensor", "b0": 0.1, "eps": 1e-9})
    for a, b in zip(ours, per_tensor):
        assert max_rel_err(a, b) <= 1e-12
    for shape in SHAPES:  # one parameter: the group-scope (theory) AdaGrad-Norm too
        a, _ = run("adagrad_subset_norm", {"lr": 0.2, "subset_size": rule, "b0": 0.1, "eps": 1e-9}, [shape])
        b, _ = run("adagrad_norm", {"lr": 0.2, "b0": 0.1, "eps": 1e-9}, [shape])
        assert max_rel_err(a[0], b[0]) <= 1e-12


def test_state_is_one_accumulator_per_subset():
    _, opt = run("adagrad_subset_norm", {"lr": 0.1, "subset_size": "heuristics"}, [(12, 5), (5, 12)], steps=1)
    shapes = [tuple(st["sum_sq"].shape) for st in opt.state.values()]
    assert shapes == [(12, 1), (1, 12)]


def test_zero_size_and_zero_gradient_are_finite():
    x = torch.zeros(0, 4, dtype=torch.float64, requires_grad=True)
    y = torch.ones(3, 3, dtype=torch.float64, requires_grad=True)
    opt = algorithms.make("adagrad_subset_norm", [x, y], lr=0.1, subset_size="heuristics")
    x.grad, y.grad = torch.zeros_like(x), torch.zeros_like(y)
    opt.step()
    assert torch.equal(y, torch.ones(3, 3, dtype=torch.float64))  # b0 > 0: 0 / b0 = 0, no NaN


def test_b0_and_eps_both_zero_is_rejected():
    with pytest.raises(ValueError, match="b0 and eps"):
        algorithms.make("adagrad_subset_norm", [torch.zeros(3, requires_grad=True)], b0=0.0)  # paper eps = 0


def test_batch_dims_equals_separate_runs():
    gen = torch.Generator().manual_seed(2)
    x0 = torch.randn(3, 8, 6, generator=gen, dtype=torch.float64)
    grads = [torch.randn(3, 8, 6, generator=gen, dtype=torch.float64) for _ in range(6)]
    for rule in ["heuristics", -2, 5]:
        xb = x0.clone().requires_grad_()
        opt = algorithms.make("adagrad_subset_norm", [xb], lr=0.1, subset_size=rule, batch_dims=1)
        for g in grads:
            xb.grad = g.clone()
            opt.step()
        assert opt.state[xb]["sum_sq"].shape[0] == 3
        for s in range(3):
            xs = x0[s].clone().requires_grad_()
            o = algorithms.make("adagrad_subset_norm", [xs], lr=0.1, subset_size=rule)
            for g in grads:
                xs.grad = g[s].clone()
                o.step()
            assert torch.equal(xs, xb[s])
