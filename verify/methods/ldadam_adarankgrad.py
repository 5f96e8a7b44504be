"""LDAdam (Robert et al., arXiv 2410.16103) and AdaRankGrad (Refael et al., arXiv 2410.17881): their
verification in one place.

* memory: LDAdam's basis, moments and error-feedback buffer (and the new tensors of every step);
  AdaRankGrad's state at its current rank r_t, its refresh log and the randomized sketch;
* theorems: LDAdam's Theorem 1 as reviewers read it and AdaRankGrad's dynamic-subspace template (both
  reconstructed or second-hand: reported);
* rate entries: LDAdam at r = 2 and 4 and AdaRankGrad on the ABC problem, both with noise on two rows,
  AdaRankGrad with room for its rank to adapt;
* mutants: a frozen subspace, no error feedback, refresh triggers never armed, the rank bound dropped, the
  rank rule never applied;
* identity checks (``verify check``, group ``ldadam_arg``): each runs the reference optimizer in float64
  against an oracle it must equal to round-off: ``torch.optim.AdamW`` for a 1×n / n×1 matrix at rank 1,
  Adam's first moment at full rank, the rule of the LDAdam code written out step by step
  (:func:`ldadam_transcription`), ``galore_adamw`` for AdaRankGrad at a fixed rank without trigger or
  moment transform, and the energy rank of a gradient with a known spectrum.
  tests/verify/test_checks_ldadam_adarankgrad.py plants a bug for each check and shows that it fails.
"""

from __future__ import annotations

import sympy
import sympy as sp
import torch

import algorithms
from algorithms import ldadam as _ldadam_module
from algorithms.projection import project_back
from verify.checks._common import relative_error
from verify.memory.formulas import (B, Context, STEP, RNG, Term, adam_transients, dense_adam_terms, ell, formula, m, n,
                                    r, side_rule, subspace_adam_terms, svd_refresh)
from verify.rank.diagnostics import rank_trace
from verify.rates.cells import ISO1, UPPER_ONLY, Builder, rate_entry, sqrt_horizon
from verify.rates.mutants import Mutant, declare as declare_mutants, patched
from verify.rates.theorems import C, T, Theorem, SCHEDULES, assume, declare, q_r
from verify.suite import check
from verify.verdicts import judged


# ----------------------------------------------------------------------------- memory formulas
@formula("ldadam",
         defaults={"rank": 16, "proj_side": "std", "square_side": "left", "proj_method": "power_iteration", "error_feedback": True, "variant": "paper"})
def _ldadam(ctx: Context):
    if not ctx.lowrank():
        return "dense", [STEP, *dense_adam_terms("docs/methods.md §3.2: dense 2p")], adam_transients()
    mm, nn = ctx.problem
    variant = ctx.get("variant")
    rule = ctx.get("proj_side")
    if variant == "official" and mm == nn and rule in ("std", "reverse_std"):
        side = "left"  # the code's side test sends square matrices left under both rules (docs/methods.md §3.1)
    else:
        side = side_rule(mm, nn, rule, ctx.get("square_side"))
    rank = int(ctx.get("rank"))
    if rank > min(mm, nn):
        raise ValueError(f"rank {rank} > min(m, n) = {min(mm, nn)} (LDAdam raises)")
    terms = [STEP, *subspace_adam_terms(ctx, side, rank, "docs/methods.md §3.2: r(μ + 2M)")]
    if ctx.get("error_feedback"):
        terms.append(Term("error_buffer", B * m * n, "param", "error_feedback",
                          "docs/methods.md §3.2: EF buffer mn (the code borrows p.grad; the toolkit keeps it in the state)"))
    if ctx.get("proj_method") == "svd_lowrank":
        terms.append(RNG)
    other = n if side == "left" else m
    proj_dim = m if side == "left" else n
    ef = 1 if ctx.get("error_feedback") else 0
    transients = [Term("new_state", B * (proj_dim * r + 2 * r * other + ef * m * n), "param", "transient",
                       "docs/methods.md §3.2: P_t, M, V (and e_{t+1}) are new tensors, the old ones freed after the step"),
                  Term("Q", B * r * r, "param", "transient", "docs/methods.md §3.1: Q_t = P_tᵀP_{t−1}"),
                  Term("full_size_temporaries", 5 * B * m * n, "param", "transient",
                       "a_t, P_{t−1}M_{t−1}, b_t, P_t ĝ, P_t M̃ (docs/methods.md §3.1 steps 0–2)"),
                  Term("subspace_temporaries", 4 * B * r * other, "param", "transient", "ĝ, M̃, Ṽ, D")]
    return "projected", terms, transients


@formula("adarankgrad",
         defaults={"min_rank": 1, "max_rank": 128, "svd": "randomized", "proj_side": "std", "square_side": "left"})
def _adarankgrad(ctx: Context):
    if not ctx.lowrank():
        return "dense", [STEP, *dense_adam_terms("docs/methods.md §6.2: dense 2p (assumed, U)")], adam_transients()
    mm, nn = ctx.problem
    side = side_rule(mm, nn, ctx.get("proj_side"), ctx.get("square_side"))
    rank_now = int(ctx.runtime.get("rank", ctx.get("max_rank")))
    ctx.values[ell] = int(ctx.runtime.get("refreshes", 1))
    terms = [STEP, *subspace_adam_terms(ctx, side, rank_now, "docs/methods.md §6.2: r_t(μ + 2M)"),
             Term("subspace_step", sympy.Integer(1), "int64", "counter", "steps in the current subspace", host=True),
             Term("refresh_log", 2 * ell, "int64", "bookkeeping", "(step, rank) per refresh, for the r_t trace", host=True)]
    if ctx.get("svd") == "randomized":
        terms.append(RNG)
    width = min(int(ctx.get("max_rank")) + int(ctx.group.get("oversampling", 10) or 0), mm, nn)
    other = n if side == "left" else m
    proj_dim = m if side == "left" else n
    transients = [Term("subspace_temporaries", 2 * B * r * other, "param", "transient", "Ĝ, N"),
                  Term("lifted_update", B * m * n, "param", "transient", "Q N")]
    if ctx.get("svd") == "randomized":
        transients += [Term("new_basis", B * proj_dim * r, "param", "refresh_transient", "docs/methods.md §6.2: old and new Q"),
                       Term("sketch", B * width * (mm + nn), "param", "refresh_transient",
                            "docs/methods.md §6.2: Y m·(r_max+p), B (r_max+p)·n"),
                       Term("sketch_factors", 4 * B * width * (mm + nn), "param", "refresh_transient",
                            "Ω, the power-iteration products and their QR factors, B = QᵀG and its SVD, U = Q U_B "
                            "(an estimate: about four more sketch-sized buffers at the peak)")]
    else:
        transients += svd_refresh(ctx, proj_dim)
    return "projected", terms, transients


# ----------------------------------------------------------------------------- theorems
declare(
    Theorem(
        key="ldadam_theorem1",
        title="LDAdam non-convex rate (Theorem 1 as read by reviewers)",
        algorithms=("ldadam",),
        source="Robert et al., ICLR 2025 (arXiv 2410.16103): Theorems 1–2 exist [S]; statement unverified",
        provenance="U",
        assumptions=(assume("bounded gradient norm (Assumption 2, per a reviewer)", "S"), assume("L-smooth, bounded below", "U"),
                     assume("contractive projection ‖X − PPᵀX‖ ≤ q_r‖X‖, q_r < 1", "U")),
        quantity="avg_sq_grad",
        probability="expectation",
        bound=C / (1 - q_r) * (1 / sp.sqrt(T)),
        schedule=SCHEDULES["inverse_sqrt_horizon"],
        notes="O(1/√T) with η ∝ 1/√T; the rank enters only the constant (through q_r): r moves the intercept.",
    ),
    Theorem(
        key="adarankgrad_sumo_template",
        title="AdaRankGrad: dynamic-subspace convergence with SGD inner steps",
        algorithms=("adarankgrad",),
        source="via the SUMO paper (arXiv 2505.24749) Thm 3.8 template; docs/methods.md §6.3",
        provenance="S",
        assumptions=(assume("β-smooth, non-convex, bounded; switches when ‖Ĝ‖ ≤ ς_ℓ", "S"),
                     assume("inner steps are SGD (the registry's AdaRankGrad runs Adam inside)", "S")),
        quantity="avg_sq_grad",
        probability="deterministic",
        bound=sp.sqrt(C / T),
        schedule=SCHEDULES["inverse_sqrt_horizon"],
        notes="Average squared gradient ≲ √(C/T) (slope ≤ −1/2) for the SGD analogue only.",
    ),
)


# ----------------------------------------------------------------------------- rate entries
@rate_entry("matrix_iso", 40)
def ldadam_and_adarankgrad_on_the_abc_problem(b: Builder) -> None:
    """LDAdam at r = 2 and 4 (the rank should move only the intercept) and AdaRankGrad at r ≤ 2."""
    g = b.g
    S, window = g.seeds_matrix, g.window_matrix
    adam_like = 0.5
    fig = "matrix_iso"
    MQ = b.mq()
    ranks = {}
    for rank in (2, 4):
        ranks[rank] = b.cell(f"ldadam/mq-iso-r{rank}", "ldadam", {"rank": rank}, MQ, ISO1, sqrt_horizon(adam_like), seeds=S,
                             figure=fig, label=f"LDAdam r = {rank}, η = 0.5/√T")
        b.upper(f"ldadam/slope-r{rank}", "ldadam", "ldadam_theorem1", ranks[rank], window, figure=fig,
                claim=f"r = {rank}: slope at most −1/2 (+0.05)", one_sided=UPPER_ONLY,
                mutants=("ldadam_no_error_feedback",) if rank == 2 else ("ldadam_frozen_subspace",))
    b.check(key="ldadam/rank-moves-slope", algorithm="ldadam", theorem="ldadam_theorem1", kind="gap",
            cells=(ranks[2], ranks[4]), window=window, low=-0.05, high=0.05, max_width=None, figure=fig, assess=False,
            resolution=None, no_schedule_power="a difference of two ranks on one schedule",
            claim="slope(r = 2) − slope(r = 4): the reviewers' reading says the rank moves only the intercept (gap 0)")
    arg = b.cell("adarankgrad/mq-iso", "adarankgrad", {"max_rank": 2}, MQ, ISO1, sqrt_horizon(0.25), seeds=g.seeds_loop,
                 figure=fig, label="AdaRankGrad r ≤ 2, η = 0.25/√T")
    b.upper("adarankgrad/slope", "adarankgrad", "adarankgrad_sumo_template", arg, window, figure=fig,
            claim="slope at most −1/2 (+0.05); the template covers SGD inner steps only", mutants=("adarankgrad_no_refresh",),
            one_sided=UPPER_ONLY)


@rate_entry("matrix_rows", 30)
def adarankgrad_and_ldadam_with_noise_on_two_rows(b: Builder) -> None:
    window, fig = b.g.window_matrix, "matrix_rows"
    cell = b.rows_cell("adarankgrad", {"max_rank": 2}, 0.25, "AdaRankGrad r ≤ 2", seeds=b.g.seeds_loop)
    b.check(key="adarankgrad/rows-floor", algorithm="adarankgrad", theorem="golore_floor", kind="slope", cells=(cell,),
            metric="min_sq_grad", window=window, low=-0.25, figure=fig,
            claim="SVD of noisy gradients: min_t ‖∇f‖² stalls (slope >= −1/4)", mutants=("adarankgrad_full_rank",),
            one_sided="a floor claim: any slope flatter than −1/4 is a stall",
            notes="reported with its window's stationarity: a floor that keeps steepening across the window is "
                  "INCONCLUSIVE, not a floor")
    cell = b.rows_cell("ldadam", {"rank": 2}, 0.5, "LDAdam r = 2")
    b.upper("ldadam/rows-slope", "ldadam", "ldadam_theorem1", cell, window, figure=fig,
            claim="noise on 2 rows: error feedback still reaches the complement (slope <= −1/2 + 0.05)",
            mutants=("ldadam_frozen_subspace",), one_sided=UPPER_ONLY)


@rate_entry("code_paths", 30)
def adarankgrad_with_room_to_adapt(b: Builder) -> None:
    g, fig = b.g, "code_paths"
    adaptive = b.cell("adarankgrad/mq-adaptive", "adarankgrad", {"max_rank": 8, "rank_threshold": 0.9},
                      b.mq(eig_range=(0.1, 2.0)), ISO1, sqrt_horizon(0.25), seeds=g.seeds_loop, figure=fig,
                      label="AdaRankGrad r ≤ 8 (room to adapt), ill-conditioned ABC")
    b.measured("adarankgrad/adaptive-slope", "adarankgrad", "adarankgrad_sumo_template", adaptive, g.window_matrix,
               figure=fig, claim="AdaRankGrad with room for its rank to adapt, measured")


# ----------------------------------------------------------------------------- mutants
class LdadamFrozenSubspace(algorithms.REGISTRY["ldadam"]):
    def _update_param(self, p, grad, state, group) -> None:
        keep = lambda b, basis_prev, *args, **kwargs: basis_prev.clone()  # noqa: E731 - the bug, in one line
        with patched(_ldadam_module, "next_basis", keep):
            super()._update_param(p, grad, state, group)


class LdadamNoErrorFeedback(algorithms.REGISTRY["ldadam"]):
    def __init__(self, params, lr: float = 1e-3, *args, **kwargs) -> None:
        kwargs["error_feedback"] = False
        super().__init__(params, lr, *args, **kwargs)


class AdarankgradNoRefresh(algorithms.REGISTRY["adarankgrad"]):
    def __init__(self, params, lr: float = 1e-3, *args, **kwargs) -> None:
        kwargs["subspace_tol"] = None
        kwargs["max_steps_per_subspace"] = None
        super().__init__(params, lr, *args, **kwargs)


class AdarankgradFullRank(algorithms.REGISTRY["adarankgrad"]):
    def __init__(self, params, lr: float = 1e-3, *args, **kwargs) -> None:
        params = list(params)
        dims = [min(p.shape[-2:]) for p in params if isinstance(p, torch.Tensor) and p.dim() >= 2]
        kwargs["max_rank"] = max(1, min(dims)) if dims else kwargs.get("max_rank", 128)  # the bug: the bound is dropped
        kwargs["rank_threshold"] = 1.0  # ... and the rank rule keeps every direction
        super().__init__(params, lr, *args, **kwargs)


class AdarankgradRankFrozen(algorithms.REGISTRY["adarankgrad"]):
    """AdaRankGrad whose rank rule is never applied: every subspace keeps the largest rank (no claim sees it;
    ``verify rates --regression`` does, on the ``adarankgrad/mq-adaptive`` cell)."""

    def __init__(self, params, lr: float = 1e-3, *args, **kwargs) -> None:
        kwargs["min_rank"] = kwargs.get("max_rank", 128)
        super().__init__(params, lr, *args, **kwargs)


declare_mutants(
    Mutant("ldadam_frozen_subspace", "ldadam", LdadamFrozenSubspace, "the power-iteration result is discarded"),
    Mutant("ldadam_no_error_feedback", "ldadam", LdadamNoErrorFeedback, "the error-feedback buffer is dropped"),
    Mutant("adarankgrad_no_refresh", "adarankgrad", AdarankgradNoRefresh, "the refresh triggers are never armed"),
    Mutant("adarankgrad_full_rank", "adarankgrad", AdarankgradFullRank, "the rank bound is dropped (full rank)"),
    Mutant("adarankgrad_rank_frozen", "adarankgrad", AdarankgradRankFrozen, "the rank rule never applied (max rank)"),
)


# ----------------------------------------------------------------------------- identity checks (verify check)
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
    """docs/methods.md §3.1 (the rule of the LDAdam code) written out line by line for one left-projected matrix,
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


@check("ldadam == the code's rule written out from docs/methods.md §3.1 (float64, r = 3, EF on/off, power/SVD)", GROUP)
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
