"""Checks in the default suite for the Subset-Norm / Subspace-Momentum family (arXiv 2411.07120).

Each check compares a reference optimizer against an independent oracle in float64: torch.optim, another
registered optimizer it must reduce to, or the update written out with explicit index sets / projector
matrices. tests/verify/test_checks_sn_sm.py plants a bug in the reference for each check and shows that
the check fails on it.
"""

from __future__ import annotations

import math

import torch

import algorithms
from verify.oracle import compare
from verify.checks._common import quick_steps, registered, relative_error
from verify.suite import check
from verify.verdicts import judged

GROUP = "sn_sm"
RTOL = 1e-12


# ----------------------------------------------------------------------------- Subset-Norm
@check("adagrad_subset_norm(k=1) == torch.optim.Adagrad (float64)", GROUP)
def adagrad_k1_vs_torch(quick: bool):
    rep = compare("adagrad_subset_norm", torch.optim.Adagrad,
                  reference_kwargs=dict(lr=0.05, subset_size=1, b0=0.1, eps=1e-8, weight_decay=0.0),
                  candidate_kwargs=dict(lr=0.05, initial_accumulator_value=0.01, eps=1e-8, foreach=False, weight_decay=0.0),
                  dtype=torch.float64, steps=quick_steps(quick), rtol=RTOL)
    return judged(rep.passed, f"max rel err {max(rep.param_err):.1e}")


@check("rmsprop_sn(k=1) == torch.optim.RMSprop (float64)", GROUP)
def rmsprop_k1_vs_torch(quick: bool):
    rep = compare("rmsprop_sn", torch.optim.RMSprop, reference_kwargs=dict(lr=1e-2, beta2=0.9, eps=1e-8, subset_size=1, weight_decay=0.0),
                  candidate_kwargs=dict(lr=1e-2, alpha=0.9, eps=1e-8, foreach=False, weight_decay=0.0),
                  dtype=torch.float64, steps=quick_steps(quick), rtol=RTOL)
    return judged(rep.passed, f"max rel err {max(rep.param_err):.1e}")


@check("adam_sn(k=1, official) == adam(eps_placement='hf') (float64)", GROUP)
def adam_sn_k1_vs_adam_hf(quick: bool):
    kw = dict(lr=1e-2, betas=(0.9, 0.99), eps=1e-3, weight_decay=0.1)
    rep = compare("adam_sn", registered("adam"), reference_kwargs=dict(kw, subset_size=1, variant="official"),
                  candidate_kwargs=dict(kw, eps_placement="hf", weight_decay_timing="after"),
                  dtype=torch.float64, steps=quick_steps(quick), rtol=RTOL, gradients="loss")
    return judged(rep.passed, f"max rel err {max(rep.param_err):.1e}")


def explicit_subsets(shape: tuple[int, ...], rule) -> list[list[int]]:
    """The partition as flat row-major index lists, straight from sn-sm.md §1.3 (2-D shapes and integer rules)."""
    numel = math.prod(shape)
    if rule == "heuristics":
        m, n = shape
        if m >= n:
            return [[i * n + j for j in range(n)] for i in range(m)]
        return [[i * n + j for i in range(m)] for j in range(n)]
    target = rule if rule > 0 else math.floor(math.sqrt(numel) / -rule)
    k = max(d for d in range(1, max(target, 1) + 1) if numel % d == 0)
    return [list(range(c * k, (c + 1) * k)) for c in range(numel // k)]


@check("adagrad_subset_norm == the update on explicit subsets (heuristics, k, -k)", GROUP)
def subset_norm_vs_explicit_subsets(quick: bool):
    gen = torch.Generator().manual_seed(0)
    worst = 0.0
    for shape in [(9, 4), (4, 10), (6, 6)]:
        for rule in ["heuristics", 4, -2]:
            x0 = torch.randn(shape, generator=gen, dtype=torch.float64)
            grads = [torch.randn(shape, generator=gen, dtype=torch.float64) for _ in range(5 if quick else 20)]
            x = x0.clone().requires_grad_()
            opt = algorithms.make("adagrad_subset_norm", [x], lr=0.1, subset_size=rule, b0=0.5, eps=1e-3)
            ref = x0.reshape(-1).tolist()
            subsets = explicit_subsets(shape, rule)
            acc = [0.25] * len(subsets)
            for g in grads:
                x.grad = g.clone()
                opt.step()
                flat = g.reshape(-1).tolist()
                for j, members in enumerate(subsets):
                    acc[j] += sum(flat[i] ** 2 for i in members)
                    for i in members:
                        ref[i] -= 0.1 * flat[i] / (math.sqrt(acc[j]) + 1e-3)
            worst = max(worst, relative_error(x.detach().reshape(-1), torch.tensor(ref, dtype=torch.float64)))
    return judged(worst <= RTOL, f"max rel err {worst:.1e} over 9 (shape, rule) cases")


# ----------------------------------------------------------------------------- Subspace-Momentum
@check("subspace_momentum(full rank, no refresh) == EMA-momentum SGD (float64)", GROUP)
def sm_full_rank_vs_ema_sgd(quick: bool):
    rep = compare("subspace_momentum", registered("sgd"),
                  reference_kwargs=dict(lr=1e-2, momentum=0.9, rank=64, rank_overflow="truncate", update_proj_gap=10**6,
                                        weight_decay=0.0),
                  candidate_kwargs=dict(lr=1e-2, momentum=0.9, momentum_type="ema", weight_decay=0.0),
                  shapes=((24, 12), (12, 24), (16, 16), (17,)), dtype=torch.float64, steps=quick_steps(quick), rtol=RTOL)
    return judged(rep.passed, f"max rel err {max(rep.param_err):.1e}")


def _right_basis(G: torch.Tensor, r: int, official: bool) -> torch.Tensor:
    """Top-r right singular vectors (n × r): paper float64 with pinned signs; official float32 as returned."""
    if official:
        return torch.linalg.svd(G.float(), full_matrices=False).Vh[:r].T.double()
    V = torch.linalg.svd(G, full_matrices=False).Vh[:r].T
    return V * V[V.abs().argmax(dim=0), torch.arange(r)].sign()


def _sm_against_matrices(*, refresh: str, gap: int, steps: int, official: bool = False) -> float:
    """Run subspace_momentum on a tall matrix and return its max rel err against explicit projector matrices."""
    gen = torch.Generator().manual_seed(1)
    m, n, r, lr, beta = 10, 6, 2, 0.05, 0.9
    x0 = torch.randn(m, n, generator=gen, dtype=torch.float64)
    x = x0.clone().requires_grad_()
    opt = algorithms.make("subspace_momentum", [x], lr=lr, momentum=beta, rank=r, update_proj_gap=gap, refresh=refresh,
                          variant="official" if official else "paper")
    ref, B, mom, worst = x0.clone(), None, torch.zeros(m, r, dtype=torch.float64), 0.0
    for t in range(1, steps + 1):
        G = torch.randn(m, n, generator=gen, dtype=torch.float64)
        x.grad = G.clone()
        opt.step()
        stale = False
        if B is None or t % gap == 0:
            if B is not None and refresh == "reset":
                mom = torch.zeros_like(mom)
            stale = B is not None and refresh == "official"
            B = _right_basis(G, r, official)
        mom = beta * mom + (1 - beta) * (G @ B)
        ref = ref - lr * (mom @ B.T + (G - G @ B @ B.T))
        if stale:
            mom = torch.zeros_like(mom)
        worst = max(worst, relative_error(x.detach(), ref))
    return worst


@check("subspace_momentum(rank 2, fixed subspace) == P^T m + (I - P^T P) g on explicit matrices", GROUP)
def sm_fixed_subspace_vs_matrices(quick: bool):
    err = _sm_against_matrices(refresh="reset", gap=10**6, steps=quick_steps(quick))
    return judged(err <= RTOL, f"max rel err {err:.1e}")


@check("subspace_momentum(official) reproduces the authors' stale-basis refresh (float32 SVD)", GROUP)
def sm_official_refresh_vs_matrices(quick: bool):
    err = _sm_against_matrices(refresh="official", gap=4, steps=quick_steps(quick), official=True)
    return judged(err <= RTOL, f"max rel err {err:.1e} (refresh every 4 steps)")


@check("adam_sn_sm(full rank, no refresh) == adam_sn (float64)", GROUP)
def snsm_full_rank_vs_adam_sn(quick: bool):
    kw = dict(lr=1e-2, betas=(0.9, 0.99), eps=1e-6, subset_size="heuristics")
    rep = compare("adam_sn_sm", registered("adam_sn"),
                  reference_kwargs=dict(kw, rank=64, rank_overflow="truncate", update_proj_gap=10**6),
                  candidate_kwargs=kw, shapes=((40, 24), (24, 40), (32, 32)), dtype=torch.float64,
                  steps=quick_steps(quick), rtol=RTOL)
    return judged(rep.passed, f"max rel err {max(rep.param_err):.1e}")
