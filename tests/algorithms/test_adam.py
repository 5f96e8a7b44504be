"""algorithms/adam.py: exact reductions to torch.optim.Adam / AdamW and the HF ε convention."""

from __future__ import annotations

import math

import pytest
import torch

import algorithms
from algorithms.adam import adam_update

from ..helpers import grad_stream, max_rel_err

SHAPES = [(7, 5), (13,)]


def run_pair(ours, theirs, steps=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    p_ours, p_theirs = ours.param_groups[0]["params"], theirs.param_groups[0]["params"]
    for grads in grad_stream(SHAPES, steps, g):
        for p, q, gr in zip(p_ours, p_theirs, grads):
            p.grad = gr.clone()
            q.grad = gr.clone()
        ours.step()
        theirs.step()
    return p_ours, p_theirs


def params(seed=3):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(s, generator=gen, dtype=torch.float64) for s in SHAPES]


@pytest.mark.parametrize("wd", [0.0, 0.1])
@pytest.mark.parametrize("betas", [(0.9, 0.999), (0.5, 0.9), (0.0, 0.99)])
def test_equals_torch_adamw(wd, betas):
    base = params()
    a = [p.clone().requires_grad_() for p in base]
    b = [p.clone().requires_grad_() for p in base]
    ours = algorithms.make("adam", a, lr=3e-2, betas=betas, eps=1e-8, weight_decay=wd)
    theirs = torch.optim.AdamW(b, lr=3e-2, betas=betas, eps=1e-8, weight_decay=wd, foreach=False)
    run_pair(ours, theirs)
    for p, q in zip(a, b):
        assert max_rel_err(p, q) <= 1e-12
    for p, q in zip(a, b):
        assert max_rel_err(ours.state[p]["exp_avg_sq"], theirs.state[q]["exp_avg_sq"]) <= 1e-12


@pytest.mark.parametrize("wd", [0.0, 0.05])
def test_coupled_weight_decay_equals_torch_adam(wd):
    base = params()
    a = [p.clone().requires_grad_() for p in base]
    b = [p.clone().requires_grad_() for p in base]
    ours = algorithms.make("adam", a, lr=1e-2, weight_decay=wd, decoupled_weight_decay=False)
    theirs = torch.optim.Adam(b, lr=1e-2, weight_decay=wd, foreach=False)
    run_pair(ours, theirs)
    for p, q in zip(a, b):
        assert max_rel_err(p, q) <= 1e-12


def test_hf_eps_placement_matches_closed_form():
    """HF convention: x ← x − lr·√c2/c1 · m/(√v + ε), then x ← x − lr·wd·x (transformers.AdamW)."""
    torch.manual_seed(0)
    x = torch.randn(6, dtype=torch.float64)
    m = torch.zeros_like(x)
    v = torch.zeros_like(x)
    ref = x.clone()
    lr, b1, b2, eps, wd = 0.1, 0.9, 0.99, 1e-3, 0.2
    for t in range(1, 6):
        g = torch.randn(6, dtype=torch.float64)
        adam_update(x, g, m, v, t, lr=lr, beta1=b1, beta2=b2, eps=eps, weight_decay=wd,
                    decoupled_weight_decay=True, eps_placement="hf", weight_decay_timing="after",
                    bias_correction=True)
        if t == 1:
            mr, vr = torch.zeros_like(ref), torch.zeros_like(ref)
        mr = b1 * mr + (1 - b1) * g
        vr = b2 * vr + (1 - b2) * g * g
        step = lr * math.sqrt(1 - b2**t) / (1 - b1**t)
        ref = ref - step * mr / (vr.sqrt() + eps)
        ref = ref - lr * wd * ref
        assert max_rel_err(x, ref) <= 1e-13


def test_hf_and_torch_placements_differ_when_eps_matters():
    """A mutant check: swapping the placement must be detectable at large ε."""
    base = params()
    outs = []
    for placement in ("torch", "hf"):
        a = [p.clone().requires_grad_() for p in base]
        opt = algorithms.make("adam", a, lr=1e-2, eps=1e-1, eps_placement=placement, weight_decay_timing="before")
        run_pair(opt, torch.optim.SGD([torch.zeros(s, dtype=torch.float64) for s in SHAPES], lr=0.0), steps=5)
        outs.append(a[0].detach())
    assert max_rel_err(*outs) > 1e-6


def test_batch_dims_equals_separate_runs():
    """S independent problems stacked on a leading dim give the same result as S separate runs."""
    S = 4
    gen = torch.Generator().manual_seed(1)
    x0 = torch.randn(S, 5, 3, generator=gen, dtype=torch.float64)
    grads = [torch.randn(S, 5, 3, generator=gen, dtype=torch.float64) for _ in range(10)]
    xb = x0.clone().requires_grad_()
    opt = algorithms.make("adam", [xb], lr=0.1, batch_dims=1)
    for g in grads:
        xb.grad = g.clone()
        opt.step()
    for s in range(S):
        xs = x0[s].clone().requires_grad_()
        o = algorithms.make("adam", [xs], lr=0.1)
        for g in grads:
            xs.grad = g[s].clone()
            o.step()
        assert torch.equal(xs, xb[s])
