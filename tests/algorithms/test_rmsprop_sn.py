"""algorithms/rmsprop_sn.py: ≡ adam_sn with β₁ = 0, and ≡ torch.optim.RMSprop at k = 1."""

from __future__ import annotations

import pytest
import torch

import algorithms

from ..helpers import grad_stream, max_rel_err

SHAPES = [(7, 5), (5, 12), (13,), ()]


def run(name, kwargs, steps=30):
    g0 = torch.Generator().manual_seed(3)
    params = [torch.randn(s, generator=g0, dtype=torch.float64).requires_grad_() for s in SHAPES]
    opt = algorithms.make(name, params, **kwargs)
    g = torch.Generator().manual_seed(0)
    for grads in grad_stream(SHAPES, steps, g):
        for p, gr in zip(params, grads):
            p.grad = gr
        opt.step()
    return params, opt


@pytest.mark.parametrize("variant", ["paper", "official"])
@pytest.mark.parametrize("bias_correction", [False, True])
@pytest.mark.parametrize("rule", ["heuristics", -2, 3], ids=str)
def test_equals_adam_sn_with_beta1_zero(variant, bias_correction, rule):
    kw = dict(lr=1e-2, eps=1e-4, weight_decay=0.05, subset_size=rule, variant=variant, bias_correction=bias_correction,
              subset_fallback="allow")
    a, opt = run("rmsprop_sn", {**kw, "beta2": 0.95})
    b, _ = run("adam_sn", {**kw, "betas": (0.0, 0.95)})
    for x, y in zip(a, b):
        assert max_rel_err(x, y) <= 1e-12
    assert all(set(st) == {"step", "exp_avg_sq"} for st in opt.state.values())


def test_subset_size_one_equals_torch_rmsprop():
    a, _ = run("rmsprop_sn", {"lr": 1e-2, "beta2": 0.9, "eps": 1e-8, "subset_size": 1})
    g0 = torch.Generator().manual_seed(3)
    theirs = [torch.randn(s, generator=g0, dtype=torch.float64).requires_grad_() for s in SHAPES]
    opt = torch.optim.RMSprop(theirs, lr=1e-2, alpha=0.9, eps=1e-8, foreach=False)
    g = torch.Generator().manual_seed(0)
    for grads in grad_stream(SHAPES, 30, g):
        for p, gr in zip(theirs, grads):
            p.grad = gr
        opt.step()
    for x, y in zip(a, theirs):
        assert max_rel_err(x, y) <= 1e-12
