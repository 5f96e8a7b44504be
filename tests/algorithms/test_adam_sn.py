"""algorithms/adam_sn.py: k = 1 ≡ adam, a hand-written subset loop, β₂ = 1 in both variants."""

from __future__ import annotations

import math
import warnings

import pytest
import torch

import algorithms
from algorithms.adam_sn import ZeroStepWarning

from ..helpers import grad_stream, max_rel_err
from .test_subsets import explicit_subsets

SHAPES = [(7, 5), (5, 12), (13,), ()]


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


@pytest.mark.parametrize("variant,placement", [("official", "hf"), ("paper", "torch")])
@pytest.mark.parametrize("wd", [0.0, 0.1])
@pytest.mark.parametrize("betas", [(0.9, 0.999), (0.5, 0.9), (0.0, 0.99)])
def test_subset_size_one_equals_adam(variant, placement, wd, betas):
    kw = dict(lr=2e-2, betas=betas, eps=1e-6, weight_decay=wd)
    ours, _ = run("adam_sn", {**kw, "subset_size": 1, "variant": variant})
    theirs, _ = run("adam", {**kw, "eps_placement": placement, "weight_decay_timing": "after"})
    for a, b in zip(ours, theirs):
        assert max_rel_err(a, b) <= 1e-12


def reference_adam_sn(x0, grads, subsets, *, lr, beta1, beta2, eps, placement, bias_correction=True):
    """The box, written on flat lists; the hf form folds √c2/c1 into the step, the torch form corrects v."""
    x = [float(v) for v in x0.reshape(-1)]
    m = [0.0] * len(x)
    v = [0.0] * len(subsets)
    for t, g in enumerate(grads, start=1):
        flat = [float(u) for u in g.reshape(-1)]
        m = [beta1 * mi + (1 - beta1) * gi for mi, gi in zip(m, flat)]
        v = [beta2 * vj + (1 - beta2) * sum(flat[i] ** 2 for i in members) for vj, members in zip(v, subsets)]
        c1, c2 = (1 - beta1**t, 1 - beta2**t) if bias_correction else (1.0, 1.0)
        for j, members in enumerate(subsets):
            for i in members:
                if placement == "hf":
                    x[i] -= lr * math.sqrt(c2) / c1 * m[i] / (math.sqrt(v[j]) + eps)
                else:
                    x[i] -= lr / c1 * m[i] / (math.sqrt(v[j] / c2) + eps)
    return torch.tensor(x, dtype=torch.float64).reshape(x0.shape)


@pytest.mark.parametrize("rule", ["heuristics", 4, -2], ids=str)
@pytest.mark.parametrize("variant,placement", [("official", "hf"), ("paper", "torch")])
def test_matches_the_hand_written_subset_loop(rule, variant, placement):
    shapes = [(6, 4), (4, 9), (12,)]
    kw = dict(lr=0.03, betas=(0.8, 0.95), eps=1e-3, subset_size=rule, variant=variant)
    params, _ = run("adam_sn", kw, shapes, steps=6)
    g = torch.Generator().manual_seed(0)
    grads = list(grad_stream(shapes, 6, g))
    for k, (p, x0) in enumerate(zip(params, start(shapes))):
        ref = reference_adam_sn(x0, [gr[k] for gr in grads], explicit_subsets(shapes[k], rule), lr=0.03, beta1=0.8,
                                beta2=0.95, eps=1e-3, placement=placement)
        assert max_rel_err(p, ref) <= 1e-12


def test_placements_differ_when_eps_matters():
    a, _ = run("adam_sn", {"lr": 1e-2, "eps": 1e-1, "variant": "paper", "subset_size": "heuristics"}, steps=3)
    b, _ = run("adam_sn", {"lr": 1e-2, "eps": 1e-1, "variant": "official", "subset_size": "heuristics"}, steps=3)
    assert max_rel_err(a[0], b[0]) > 1e-6


def test_beta2_one_paper_is_accumulation_without_second_bias_correction():
    """paper: v = Σ_t ‖g_Ψ‖², c2 = 1; equals adagrad_subset_norm when β1 = 0 and bias correction is off."""
    kw = dict(lr=0.05, eps=1e-6, subset_size="heuristics")
    a, _ = run("adam_sn", {**kw, "betas": (0.0, 1.0), "bias_correction": False})
    b, _ = run("adagrad_subset_norm", {**kw, "variant": "official"})
    for x, y in zip(a, b):
        assert max_rel_err(x, y) <= 1e-12
    # with bias correction, only c1 applies (β1 = 0 -> c1 = 1): the same trajectory
    c, _ = run("adam_sn", {**kw, "betas": (0.0, 1.0), "bias_correction": True, "variant": "paper"})
    for x, y in zip(c, b):
        assert max_rel_err(x, y) <= 1e-12


def test_beta2_one_official_with_bias_correction_takes_zero_steps_and_warns():
    """docs/methods.md §1.7, item 2: GenericOptim's sqrt(1 - 1**t) = 0, so the parameters never move."""
    with pytest.warns(ZeroStepWarning, match="exactly zero"):
        params, opt = run("adam_sn", {"lr": 0.1, "betas": (0.9, 1.0), "variant": "official", "subset_size": "heuristics"}, steps=3)
    for p, x0 in zip(params, start()):
        assert torch.equal(p, x0)
    assert float(opt.state[params[0]]["exp_avg_sq"].abs().sum()) > 0  # the state still accumulates, as in the code
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        algorithms.make("adam_sn", [torch.zeros(4, requires_grad=True)], betas=(0.9, 1.0), variant="paper")


def test_authors_adagrad_preset_keeps_momentum():
    """The code's "adagrad" preset: betas=(0.9, 1), correct_bias=False: EMA momentum over an accumulated SN."""
    x0 = torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=torch.float64)
    x = x0.clone().requires_grad_()
    opt = algorithms.make("adam_sn", [x], lr=0.1, betas=(0.9, 1.0), bias_correction=False, variant="official",
                          subset_size="heuristics")
    g1 = torch.tensor([[0.3, 0.4], [1.0, 0.0]], dtype=torch.float64)
    x.grad = g1.clone()
    opt.step()
    denom = torch.tensor([[0.5], [1.0]], dtype=torch.float64) + 1e-6
    assert max_rel_err(x, x0 - 0.1 * (0.1 * g1) / denom) <= 1e-15


def test_state_shapes_match_the_memory_table():
    """docs/memory.md §1: AdamSN heuristic m:(m,n), v:(m,1); int k: v:(mn/k, 1); β1 = 0: no m."""
    _, opt = run("adam_sn", {"subset_size": "heuristics"}, [(12, 5)], steps=1)
    (st,) = opt.state.values()
    assert st["exp_avg"].shape == (12, 5) and st["exp_avg_sq"].shape == (12, 1)
    _, opt = run("adam_sn", {"subset_size": 4}, [(12, 5)], steps=1)
    (st,) = opt.state.values()
    assert st["exp_avg_sq"].shape == (15, 1)
    _, opt = run("adam_sn", {"betas": (0.0, 0.999)}, [(12, 5)], steps=1)
    (st,) = opt.state.values()
    assert "exp_avg" not in st


def test_batch_dims_equals_separate_runs():
    gen = torch.Generator().manual_seed(2)
    x0 = torch.randn(3, 8, 6, generator=gen, dtype=torch.float64)
    grads = [torch.randn(3, 8, 6, generator=gen, dtype=torch.float64) for _ in range(6)]
    for rule in ["heuristics", -2]:
        xb = x0.clone().requires_grad_()
        opt = algorithms.make("adam_sn", [xb], lr=0.1, subset_size=rule, batch_dims=1)
        for g in grads:
            xb.grad = g.clone()
            opt.step()
        for s in range(3):
            xs = x0[s].clone().requires_grad_()
            o = algorithms.make("adam_sn", [xs], lr=0.1, subset_size=rule)
            for g in grads:
                xs.grad = g[s].clone()
                o.step()
            assert torch.equal(xs, xb[s])


@pytest.mark.crosscheck
def test_crosscheck_pytorch_optimizer_adamwsn():
    """Third-party ``pytorch_optimizer.AdamWSN`` (kozistr, 4.1.0) uses the official conventions (HF ε, EMA of the
    per-chunk sum of squares, ⌊√numel/|s|⌋ chunks, decoupled decay after the update) with its own defaults
    (eps 1e-8, subset_size −1). Its for-loop path must equal ``adam_sn(variant="official")``."""
    po = pytest.importorskip("pytorch_optimizer")
    shapes = [(12, 10), (16, 16), (30,)]
    kw = dict(lr=3e-2, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.1)
    for rule in (-1, -2, 6):
        ours, _ = run("adam_sn", {**kw, "subset_size": rule, "variant": "official"}, shapes, steps=25)
        theirs = [p.clone().requires_grad_() for p in start(shapes)]
        opt = po.AdamWSN([{"params": theirs, "sn": True}], subset_size=rule, foreach=False, **kw)
        g = torch.Generator().manual_seed(0)
        for grads in grad_stream(shapes, 25, g):
            for p, gr in zip(theirs, grads):
                p.grad = gr
            opt.step()
        for a, b in zip(ours, theirs):
            assert max_rel_err(a, b) <= 1e-12, rule
