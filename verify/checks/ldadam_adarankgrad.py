"""Checks in the default suite for LDAdam (arXiv 2410.16103) and AdaRankGrad (arXiv 2410.17881).

Each check runs the reference optimizer in float64 against an oracle it must equal to round-off:
``torch.optim.AdamW`` for a 1×n / n×1 matrix at rank 1, Adam's first moment at full rank, the rule
of the LDAdam code written out step by step from spec ldadam.md §A1 (:func:`ldadam_transcription`),
``galore_adamw`` for AdaRankGrad at a fixed rank without trigger or moment transform, and the
energy rank of a gradient with a known spectrum. tests/verify/test_checks_ldadam_adarankgrad.py
plants a bug for each check and shows that it fails.
"""

from __future__ import annotations

import torch

import algorithms
from algorithms.projection import project_back
from verify.checks._common import relative_error
from verify.rank.diagnostics import rank_trace
from verify.suite import check
from verify.verdicts import judged

GROUP = "ldadam_arg"
RTOL = 1e-12
F64 = torch.float64
LDADAM_BETAS = (0.908, 0.99)


def _gradients(shape, steps, seed):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=g, dtype=F64) for _ in range(steps)]


def _start(shape, seed=2):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=F64)


def _run(opt, param, grads):
    for G in grads:
        param.grad = G.clone()
        opt.step()
    return param.detach()


# ----------------------------------------------------------------------------- LDAdam
def ldadam_rank_one_error(quick: bool) -> float:
    """Worst rel. error of ldadam(rank 1) against torch.optim.AdamW on 1×n and n×1 matrices."""
    steps = 30 if quick else 200
    worst = 0.0
    for shape in ((1, 24), (24, 1)):
        grads = _gradients(shape, steps, seed=1)
        for variant in ("paper", "official"):
            for ef in (True, False):
                a, b = _start(shape).requires_grad_(), _start(shape).requires_grad_()
                ours = algorithms.make("ldadam", [a], lr=2e-2, betas=LDADAM_BETAS, weight_decay=0.1, rank=1,
                                       error_feedback=ef, variant=variant)
                ref = torch.optim.AdamW([b], lr=2e-2, betas=LDADAM_BETAS, weight_decay=0.1, foreach=False)
                worst = max(worst, relative_error(_run(ours, a, grads), _run(ref, b, grads)))
    return worst


def ldadam_full_rank_momentum_error(quick: bool) -> float:
    """Worst rel. error of the lifted first moment P_t M_t against Adam's at r = min(m, n)."""
    steps = 20 if quick else 100
    worst = 0.0
    for shape, side in (((5, 8), "left"), ((8, 5), "right"), ((6, 6), "left")):
        a, b = _start(shape).requires_grad_(), _start(shape).requires_grad_()
        ours = algorithms.make("ldadam", [a], lr=2e-2, rank=min(shape))
        adam = torch.optim.AdamW([b], lr=2e-2, betas=LDADAM_BETAS, foreach=False)
        for G in _gradients(shape, steps, seed=3):
            a.grad, b.grad = G.clone(), G.clone()
            ours.step()
            adam.step()
            st = ours.state[a]
            worst = max(worst, relative_error(project_back(st["exp_avg"], st["basis"], side), adam.state[b]["exp_avg"]))
    return worst


def ldadam_transcription(W0, grads, *, lr, betas, eps, wd, rank, rho, error_feedback, proj_method="power_iteration"):
    """ldadam.md §A1 (the rule of the LDAdam code) written out line by line for one left-projected matrix,
    float64, no batching; an oracle independent of :mod:`algorithms.ldadam`'s functions."""
    b1, b2 = betas
    W = W0.clone()
    m, n = W.shape
    e = torch.zeros_like(W)
    M = torch.zeros(rank, n, dtype=W.dtype)
    V = torch.zeros(rank, n, dtype=W.dtype)
    P_prev = torch.zeros(m, rank, dtype=W.dtype)
    for t, g in enumerate(grads, start=1):
        a = g + e if error_feedback else g
        if t == 1:
            P = torch.linalg.svd(a, full_matrices=False)[0][:, :rank]
        else:
            bt = rho * (P_prev @ M) / (1 - b1 ** (t - 1)) + (1 - rho) * a
            if proj_method == "svd":
                P = torch.linalg.svd(bt, full_matrices=False)[0][:, :rank]
            else:
                P = torch.linalg.qr(bt @ (bt.T @ P_prev))[0]
        g_hat = P.T @ a
        Q = P.T @ P_prev
        M_moved = Q @ M
        if error_feedback:
            e = a - P @ g_hat + b1 / (1 - b1) * (P_prev @ M - P @ M_moved)
        if t > 1:
            c1, c2 = 1 - b1 ** (t - 1), 1 - b2 ** (t - 1)
            V = c2 * ((Q * Q) @ (V / c2 - M**2 / c1**2) + M_moved**2 / c1**2).abs()
            M = M_moved
        M = b1 * M + (1 - b1) * g_hat
        V = b2 * V + (1 - b2) * g_hat**2
        D = (M / (1 - b1**t)) / ((V / (1 - b2**t)).sqrt() + eps)
        W = (1 - lr * wd) * W - lr * P @ D
        P_prev = P
    return W


def ldadam_transcription_error(quick: bool) -> float:
    """Worst rel. error of ldadam (paper variant) against :func:`ldadam_transcription` at r = 3."""
    steps = 25 if quick else 150
    worst = 0.0
    for shape in ((4, 9), (9, 4), (6, 6)):
        grads = _gradients(shape, steps, seed=4)
        x = _start(shape)
        for ef in (True, False):
            for method in ("power_iteration", "svd"):
                p = x.clone().requires_grad_()
                opt = algorithms.make("ldadam", [p], lr=3e-2, betas=LDADAM_BETAS, weight_decay=0.1, rank=3,
                                      error_feedback=ef, proj_method=method)
                _run(opt, p, grads)
                kw = dict(lr=3e-2, betas=LDADAM_BETAS, eps=1e-8, wd=0.1, rank=3, rho=0.908,
                          error_feedback=ef, proj_method=method)
                if shape[0] > shape[1]:  # projected on the right: left(Wᵀ)ᵀ = right(W)
                    ref = ldadam_transcription(x.T, [g.T for g in grads], **kw).T
                else:
                    ref = ldadam_transcription(x, grads, **kw)
                worst = max(worst, relative_error(p.detach(), ref))
    return worst


@check("ldadam 1×n / n×1 at rank 1 == torch.optim.AdamW (float64; both variants, EF on/off)", GROUP)
def ldadam_rank_one_vs_adamw(quick: bool):
    err = ldadam_rank_one_error(quick)
    return judged(err <= RTOL, f"max rel err {err:.1e}")


@check("ldadam full rank: lifted first moment P_t M_t == Adam's (float64; parameters differ by design)", GROUP)
def ldadam_full_rank_momentum(quick: bool):
    err = ldadam_full_rank_momentum_error(quick)
    return judged(err <= RTOL, f"max rel err {err:.1e} (tall, wide, square)")


@check("ldadam == the code's rule written out from ldadam.md §A1 (float64, r = 3, EF on/off, power/SVD)", GROUP)
def ldadam_vs_transcription(quick: bool):
    err = ldadam_transcription_error(quick)
    return judged(err <= RTOL, f"max rel err {err:.1e} (tall, wide, square)")


# ----------------------------------------------------------------------------- AdaRankGrad
def adarankgrad_galore_error(quick: bool) -> float:
    """Worst rel. error of adarankgrad (r_min = r_max = 3, no trigger, cap T = 4, exact SVD, moments kept)
    against galore_adamw (variant "paper", T = 4), with GaLore Algorithm 2's conventions."""
    if "galore_adamw" not in algorithms.REGISTRY:
        raise LookupError("galore_adamw is not registered")
    steps = 30 if quick else 200
    conv = dict(eps=1e-8, eps_placement="torch", weight_decay_timing="before", square_side="left")
    worst = 0.0
    for shape in ((10, 6), (6, 10), (7, 7)):
        grads = _gradients(shape, steps, seed=5)
        a, b = _start(shape).requires_grad_(), _start(shape).requires_grad_()
        ours = algorithms.make("adarankgrad", [a], lr=2e-2, weight_decay=0.05, min_rank=3, max_rank=3,
                               subspace_tol=None, max_steps_per_subspace=4, svd="exact", first_moment_transform="keep",
                               second_moment_transform="keep", scale=0.5, **conv)
        ref = algorithms.make("galore_adamw", [b], lr=2e-2, weight_decay=0.05, rank=3, update_proj_gap=4,
                              scale=0.5, variant="paper", **conv)
        worst = max(worst, relative_error(_run(ours, a, grads), _run(ref, b, grads)))
    return worst


def adarankgrad_spectrum_ranks(quick: bool) -> dict[float, tuple[int, int]]:
    """``{threshold: (chosen rank, expected rank)}`` on G = U diag(3, 2, 1, .5, .25) Vᵀ (randomized SVD
    with a sketch wide enough to be exact, and the exact SVD)."""
    s = torch.tensor([3.0, 2.0, 1.0, 0.5, 0.25], dtype=F64)
    g = torch.Generator().manual_seed(6)
    U = torch.linalg.qr(torch.randn(8, 5, generator=g, dtype=F64))[0]
    V = torch.linalg.qr(torch.randn(12, 5, generator=g, dtype=F64))[0]
    G = U @ torch.diag(s) @ V.T
    kept = (s * s).cumsum(0) / (s * s).sum()
    out = {}
    for svd in ("randomized", "exact"):
        for tau in (0.5, 0.9, 0.95, 0.99, 1.0):
            expected = int((kept < tau * (1 - 1e-12)).sum()) + 1
            p = torch.zeros(8, 12, dtype=F64, requires_grad=True)
            opt = algorithms.make("adarankgrad", [p], lr=1e-2, max_rank=8, oversampling=4, svd=svd,
                                  rank_threshold=tau)
            p.grad = G
            opt.step()
            out[(svd, tau)] = (rank_trace(opt, p)[0], expected)
    return out


@check("adarankgrad(r_min = r_max, trigger off, no moment transform) == galore_adamw (float64)", GROUP)
def adarankgrad_vs_galore(quick: bool):
    try:
        err = adarankgrad_galore_error(quick)
    except LookupError as exc:
        return judged(False, str(exc))
    return judged(err <= RTOL, f"max rel err {err:.1e} (tall, wide, square)")


@check("adarankgrad energy rank == smallest r keeping the threshold of ‖G‖_F² (known spectrum)", GROUP)
def adarankgrad_energy_rank(quick: bool):
    ranks = adarankgrad_spectrum_ranks(quick)
    bad = {k: v for k, v in ranks.items() if v[0] != v[1]}
    return judged(not bad, "all thresholds match" if not bad else f"mismatch (chosen, expected): {bad}")
