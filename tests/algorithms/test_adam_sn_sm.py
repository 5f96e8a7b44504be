"""algorithms/adam_sn_sm.py: reductions to adam_sn / rmsprop_sn / adam, an explicit-matrix reference for both
variants, the paper's parameter grouping and the state-memory formula."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn

import algorithms
from algorithms.grouping import paper_param_groups

from ..helpers import max_rel_err
from .test_subspace_momentum import M, N, grads_for, pinned_right_basis, x_start


def run(name, kwargs, shape=(M, N), steps=12):
    x = x_start(shape).requires_grad_()
    opt = algorithms.make(name, [x], **kwargs)
    out = []
    for g in grads_for(shape, steps):
        x.grad = g.clone()
        opt.step()
        out.append(x.detach().clone())
    return out, opt, x


SN_KW = dict(lr=0.02, betas=(0.9, 0.99), eps=1e-6, weight_decay=0.05)


# ----------------------------------------------------------------------------- reductions
@pytest.mark.parametrize("variant,proj_type", [("paper", "svd"), ("paper", "topk"), ("official", "uniform")])
@pytest.mark.parametrize("rule", ["heuristics", -2])
@pytest.mark.parametrize("betas", [(0.9, 0.99), (0.9, 1.0)])
def test_full_rank_without_refresh_equals_adam_sn(variant, proj_type, rule, betas):
    full = N if proj_type == "svd" else M
    kw = {**SN_KW, "betas": betas, "subset_size": rule, "variant": variant, "subset_fallback": "allow",
          "bias_correction": betas[1] < 1}
    ours, _, _ = run("adam_sn_sm", {**kw, "rank": full, "proj_type": proj_type, "update_proj_gap": 1000})
    ref, _, _ = run("adam_sn", kw)
    for a, b in zip(ours, ref):
        assert max_rel_err(a, b) <= 1e-12


def test_full_rank_official_svd_is_adam_sn_to_float32_round_off():
    """float32 SVD basis (orthonormal to ~1e-7 in float64): the identity holds to float32 round-off only."""
    kw = {**SN_KW, "variant": "official"}
    ours, _, _ = run("adam_sn_sm", {**kw, "rank": N, "update_proj_gap": 1000})
    ref, _, _ = run("adam_sn", {**kw, "subset_size": "heuristics"})
    assert max(max_rel_err(a, b) for a, b in zip(ours, ref)) <= 1e-5


def test_rank_zero_paper_equals_adam_sn_without_momentum():
    ours, _, _ = run("adam_sn_sm", {**SN_KW, "rank": 0})
    ref, _, _ = run("adam_sn", {**SN_KW, "betas": (0.0, 0.99), "subset_size": "heuristics"})
    for a, b in zip(ours, ref):
        assert max_rel_err(a, b) <= 1e-12


@pytest.mark.parametrize("bias_correction", [False, True])
@pytest.mark.parametrize("variant", ["paper", "official"])
def test_beta1_zero_equals_rmsprop_sn(bias_correction, variant):
    kw = dict(lr=0.02, eps=1e-6, subset_size="heuristics", variant=variant, bias_correction=bias_correction)
    ours, opt, x = run("adam_sn_sm", {**kw, "betas": (0.0, 0.99), "rank": 2})
    ref, _, _ = run("rmsprop_sn", {**kw, "beta2": 0.99})
    for a, b in zip(ours, ref):
        assert max_rel_err(a, b) <= 1e-12
    assert "basis" not in opt.state[x]  # no momentum: no basis is built (the code)


@pytest.mark.parametrize("variant,placement", [("paper", "torch"), ("official", "hf")])
def test_dense_path_equals_adam(variant, placement):
    shapes = [(7,), (3, 4, 2), (M, N), ()]
    params = [x_start(s).requires_grad_() for s in shapes]
    refs = [x_start(s).requires_grad_() for s in shapes]
    opt = algorithms.make("adam_sn_sm", [{"params": params[:2] + params[3:]}, {"params": [params[2]], "lowrank": False}],
                          rank=2, variant=variant, **SN_KW)
    ref = algorithms.make("adam", refs, eps_placement=placement, weight_decay_timing="after", **SN_KW)
    for t in range(8):
        for p, q, s in zip(params, refs, shapes):
            g = grads_for(s, t + 1)[t]
            p.grad, q.grad = g.clone(), g.clone()
        opt.step()
        ref.step()
    for p, q in zip(params, refs):
        assert max_rel_err(p, q) <= 1e-12


# ----------------------------------------------------------------------------- explicit reference
def reference_adam_sn_sm(grads, x0, *, lr, b1, b2, eps, r, gap, official):
    """Tall matrix, heuristics rows, svd on the right, written with explicit matrices (docs/methods.md §1.5).
    official: stale-basis refresh, HF ε, whole numerator over c1; paper: reset, torch ε, only m over c1."""
    x = x0.clone()
    B = m = None
    v = torch.zeros(x.shape[0], 1, dtype=x.dtype)
    for t, G in enumerate(grads, start=1):
        zero_after = False
        if B is None or t % gap == 0:
            B_new = pinned_right_basis(G, r, official)
            if m is None or not official:
                m = torch.zeros(G.shape[0], r, dtype=G.dtype)
            else:
                zero_after = True
            B = B_new
        m = b1 * m + (1 - b1) * (G @ B)
        residual = G - G @ B @ B.T
        v = b2 * v + (1 - b2) * (G * G).sum(dim=1, keepdim=True)
        c1, c2 = 1 - b1**t, 1 - b2**t
        if official:
            x = x - lr * math.sqrt(c2) / c1 * (m @ B.T + residual) / (v.sqrt() + eps)
        else:
            x = x - lr * (m @ B.T / c1 + residual) / ((v / c2).sqrt() + eps)
        if zero_after:
            m = torch.zeros_like(m)
        yield x


@pytest.mark.parametrize("variant", ["paper", "official"])
def test_matches_the_explicit_reference(variant):
    kw = dict(lr=0.03, betas=(0.9, 0.99), eps=1e-3, rank=2, update_proj_gap=4, variant=variant)
    ours, _, _ = run("adam_sn_sm", kw)
    ref = list(reference_adam_sn_sm(grads_for((M, N), 12), x_start((M, N)), lr=0.03, b1=0.9, b2=0.99, eps=1e-3, r=2, gap=4,
                                    official=variant == "official"))
    for t, (a, b) in enumerate(zip(ours, ref), start=1):
        assert max_rel_err(a, b) <= 1e-12, f"step {t}"


def test_batch_dims_equals_separate_runs():
    S = 3
    x0, grads = x_start((S, M, N)), grads_for((S, M, N), 7)
    kw = dict(lr=0.03, rank=2, update_proj_gap=3, subset_size=-2, variant="official")
    xb = x0.clone().requires_grad_()
    opt = algorithms.make("adam_sn_sm", [xb], batch_dims=1, **kw)
    for g in grads:
        xb.grad = g.clone()
        opt.step()
    for s in range(S):
        xs = x0[s].clone().requires_grad_()
        o = algorithms.make("adam_sn_sm", [xs], **kw)
        for g in grads:
            xs.grad = g[s].clone()
            o.step()
        assert max_rel_err(xb[s], xs) <= 1e-13


# ----------------------------------------------------------------------------- grouping and memory
class RMSNorm(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x):
        return self.weight * x / x.pow(2).mean(-1, keepdim=True).add(1e-6).sqrt()


class TinyLlama(nn.Module):
    def __init__(self, vocab=11, h=8, f=12):
        super().__init__()
        self.embed_tokens = nn.Embedding(vocab, h)
        self.layers = nn.ModuleList([nn.ModuleDict(dict(
            input_layernorm=RMSNorm(h),
            q_proj=nn.Linear(h, h, bias=False), k_proj=nn.Linear(h, h, bias=False),
            v_proj=nn.Linear(h, h, bias=False), o_proj=nn.Linear(h, h, bias=False),
            gate_proj=nn.Linear(h, f, bias=False), up_proj=nn.Linear(h, f, bias=False), down_proj=nn.Linear(f, h),
        ))])
        self.norm = RMSNorm(h)
        self.lm_head = nn.Linear(h, vocab, bias=False)

    def forward(self, ids):
        x = self.embed_tokens(ids)
        for layer in self.layers:
            y = layer["input_layernorm"](x)
            x = x + layer["o_proj"](layer["q_proj"](y) * torch.sigmoid(layer["k_proj"](y)) + layer["v_proj"](y))
            x = x + layer["down_proj"](torch.nn.functional.silu(layer["gate_proj"](x)) * layer["up_proj"](x))
        return self.lm_head(self.norm(x))


def test_param_groups_put_every_linear_weight_including_lm_head_in_sn_sm():
    model = TinyLlama()
    groups = paper_param_groups("adam_sn_sm", model, rank=2, update_proj_gap=3)
    snsm, dense = groups
    assert snsm.get("lowrank", True) is True and dense["lowrank"] is False and snsm["rank"] == 2
    assert snsm["subset_size"] == "heuristics"
    assert "lm_head.weight" in snsm["param_names"]
    assert all(n.endswith("weight") and "norm" not in n and "embed" not in n for n in snsm["param_names"])
    assert set(dense["param_names"]) == {"embed_tokens.weight", "layers.0.input_layernorm.weight",
                                         "layers.0.down_proj.bias", "norm.weight"}
    assert len(snsm["params"]) + len(dense["params"]) == len(list(model.parameters()))


def test_state_memory_matches_the_formula_on_a_llama_shaped_model():
    """docs/memory.md §1: per SN+SM matrix r(M + μ) + M (svd, heuristics); every other parameter 2·numel (Adam)."""
    torch.manual_seed(0)
    model = TinyLlama().double()
    r = 3
    opt = algorithms.make("adam_sn_sm", paper_param_groups("adam_sn_sm", model, rank=r, update_proj_gap=5), lr=1e-2)
    ids = torch.randint(0, 11, (2, 5))
    for _ in range(2):
        opt.zero_grad()
        model(ids).logsumexp(-1).mean().backward()
        opt.step()
    snsm, dense = opt.param_groups
    expected = sum(r * (max(p.shape) + min(p.shape)) + max(p.shape) for p in snsm["params"])
    expected += sum(2 * p.numel() for p in dense["params"])
    stored = sum(t.numel() for st in opt.state.values() for k, t in st.items() if k not in ("step",))
    assert stored == expected


def test_llama_1b_state_counts_match_memory_md():
    """docs/memory.md §3 [D], LLaMA-1B, r = 512: SN+SM momentum 318,361,600, SN 621,800, projectors 177,209,344, on the
    optimizer's own side/rank/subset rules (parameters on the meta device: nothing is allocated)."""
    h, f, layers, vocab, r = 2048, 5461, 24, 32000, 512
    shapes = [(h, h)] * 4 * layers + [(f, h), (f, h), (h, f)] * layers + [(vocab, h)]
    params = [torch.empty(s, device="meta", requires_grad=True) for s in shapes]
    opt = algorithms.make("adam_sn_sm", params, rank=r)
    group = opt.param_groups[0]
    momentum = projector = sn = 0
    for p in params:
        cfg = opt._sm_config(p, group)
        m, n = p.shape
        d = n if cfg.side == "right" else m
        momentum += cfg.rank * (m * n // d)
        projector += cfg.rank * d
        sn += opt._layout(p, group).num_subsets
    assert (momentum, sn, projector) == (318_361_600, 621_800, 177_209_344)


def test_subset_fallback_applies_to_the_projected_matrices_only_and_names_them():
    w = torch.zeros(7, 11, requires_grad=True)  # 77 = 7·11: no divisor in [2, 4] -> fallback
    b = torch.zeros(7, requires_grad=True)  # dense Adam: no subset rule, no fallback
    groups = [{"params": [b, w], "param_names": ["bias", "weight"]}]
    with pytest.raises(ValueError, match=r"'weight'.*numel=77"):
        algorithms.make("adam_sn_sm", groups, rank=2, subset_size=4, subset_fallback="raise")
    algorithms.make("adam_sn_sm", [{"params": [b], "param_names": ["bias"]}], rank=2, subset_size=4, subset_fallback="raise")
