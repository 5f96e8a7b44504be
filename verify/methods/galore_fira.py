"""GaLore (Zhao et al., arXiv 2403.03507) and Fira (Chen et al., arXiv 2410.01623): their verification
in one place.

* memory: the basis and the two Adam moments of the projected gradient (``rμ + 2rM``), Fira's residual
  norm, the SVD refresh's temporaries;
* theorems: GoLore's result that SVD bases of noisy gradients stall (second-hand, reported);
* rate entries: Fira by analogy on the ABC problem, GaLore and Fira with noise on two rows (the floor and
  the residual that escapes it), GaLore at α = 0.25;
* mutants: the rank ignored (full rank), Fira's residual dropped, GaLore's scale α applied twice;
* identity checks (``verify check``, group ``galore_fira``): each runs a reference optimizer in float64
  against an oracle it must equal to round-off: torch.optim.AdamW / HF-style AdamW under an identity
  projector, Adam on the projected gradient under a fixed basis, GaLore when Fira's residual vanishes,
  and Fira written out step by step from Algorithm 1 (paper) and from the authors' code (official) by
  :func:`fira_transcription`; and GaLore's Theorem 3.8 (fixed P, Q, projected SGD on a quadratic contracts
  R at 1 − ηκ, attained on the slowest mode) through the toolkit's projections.
  tests/verify/test_checks_galore_fira.py plants a bug for each check and shows that it fails.
"""

from __future__ import annotations

import math

import sympy
import sympy as sp
import torch

import algorithms
from algorithms import fira_adamw as _fira_module
from verify.checks._common import relative_error
from verify.memory.formulas import (B, Context, STEP, Term, adam_transients, dense_adam_terms, formula, m, n, r,
                                    side_rule, subspace_adam_terms, svd_refresh)
from verify.rates.cells import ISO1, UPPER_ONLY, Builder, rate_entry, sqrt_horizon
from verify.rates.mutants import Mutant, declare as declare_mutants, patched
from verify.rates.theorems import C, T, Theorem, SCHEDULES, assume, declare, nu
from verify.suite import check
from verify.verdicts import judged


# ----------------------------------------------------------------------------- memory formulas
#: variant-dependent choices (docs/methods.md §4.1)
_GALORE_VARIANT = {"paper": {"square_side": "left", "rank_overflow": "raise"},
                   "official": {"square_side": "right", "rank_overflow": "truncate"}}


def _galore_layout(ctx: Context) -> tuple[str, int]:
    mm, nn = ctx.problem
    variant = ctx.get("variant")
    square = ctx.group.get("square_side") or _GALORE_VARIANT[variant]["square_side"]
    side = side_rule(mm, nn, ctx.get("proj_side"), square)
    rank = int(ctx.get("rank"))
    if rank > min(mm, nn) and _GALORE_VARIANT[variant]["rank_overflow"] == "raise":
        raise ValueError(f"rank {rank} > min(m, n) = {min(mm, nn)} (variant 'paper' raises)")
    return side, min(rank, mm, nn)


def _galore_transients(ctx: Context, fira: bool) -> list[Term]:
    """Ordinary step: R and N (subspace size) and the lifted update P N (full size); Fira adds the residual
    S (full size) and its per-column factors. Refresh: the SVD (:func:`svd_refresh`)."""
    side = _galore_layout(ctx)[0]
    other, proj_dim = (n, m) if side == "left" else (m, n)
    steady = [Term("subspace_temporaries", 2 * B * r * other, "param", "transient", "R = PᵀG, N"),
              Term("lifted_update", B * m * n, "param", "transient", "P N")]
    if fira:
        steady += [Term("residual", B * m * n, "param", "transient", "S = G − P R, scaled, limited"),
                   Term("scaling_factors", B * other, "param", "transient", "one factor per column of the subspace step")]
    return steady + svd_refresh(ctx, proj_dim)


@formula("galore_adamw", defaults={"rank": 128, "proj_side": "std", "variant": "paper"})
def _galore(ctx: Context):
    if not ctx.lowrank():
        return "dense", [STEP, *dense_adam_terms("docs/methods.md §4.2: dense 2p")], adam_transients()
    side, rank = _galore_layout(ctx)
    terms = [STEP, *subspace_adam_terms(ctx, side, rank, "GaLore Table 1 / docs/memory.md §1: rμ + 2rM")]
    return "projected", terms, _galore_transients(ctx, fira=False)


@formula("fira_adamw", defaults={"rank": 128, "proj_side": "std", "variant": "paper"})
def _fira(ctx: Context):
    if not ctx.lowrank():
        return "dense", [STEP, *dense_adam_terms("docs/methods.md §5: dense 2p (HF-AdamW)")], adam_transients()
    side, rank = _galore_layout(ctx)
    terms = [STEP, *subspace_adam_terms(ctx, side, rank, "Fira Table 2: rμ + 2rM + 1"),
             Term("residual_norm", B * sympy.Integer(1), "param", "scalar", "Fira Table 2: the scalar ‖S_{t−1}‖")]
    return "projected", terms, _galore_transients(ctx, fira=True)


# ----------------------------------------------------------------------------- theorems
declare(
    Theorem(
        key="golore_floor",
        title="GaLore with SVD of stochastic gradients need not reach stationarity",
        algorithms=("galore_adamw", "fira_adamw", "adarankgrad"),
        source="He et al., GoLore, arXiv 2410.11289 (via a summary; docs/methods.md §4.3)",
        provenance="S",
        assumptions=(assume("noisy gradients, small batch, subspace from the SVD of the stochastic gradient", "S"),),
        quantity="min_sq_grad",
        probability="expectation",
        bound=C / sp.sqrt(T) + nu,
        schedule=SCHEDULES["inverse_sqrt_horizon"],
        notes="ν > 0: a σ- and batch-dependent floor (slope → 0). Random projections (GoLore) remove it.",
    ),
)


# ----------------------------------------------------------------------------- rate entries
@rate_entry("matrix_iso", 80)
def fira_by_analogy(b: Builder) -> None:
    b.matrix_analogy("fira_adamw", {"rank": 2, "scale": 1.0, "update_proj_gap": 200}, 0.5, "Fira r = 2")


@rate_entry("matrix_rows", 10)
def galore_and_fira_with_noise_on_two_rows(b: Builder) -> None:
    """An SVD of the noisy gradient picks the noise's rows: GaLore's min ‖∇f‖² stalls (GoLore), Fira's residual
    reaches the complement."""
    window, fig = b.g.window_matrix, "matrix_rows"
    cell = b.rows_cell("galore_adamw", {"rank": 2, "scale": 1.0, "update_proj_gap": 200}, 0.5, "GaLore r = 2")
    b.check(key="galore_adamw/rows-floor", algorithm="galore_adamw", theorem="golore_floor", kind="slope", cells=(cell,),
            metric="min_sq_grad", window=window, low=-0.25, figure=fig,
            claim="SVD of noisy gradients: min_t ‖∇f‖² stalls (slope >= −1/4)", mutants=("galore_full_rank",),
            one_sided="a floor claim: any slope flatter than −1/4 is a stall",
            notes="reported with its window's stationarity: a floor that keeps steepening across the window is "
                  "INCONCLUSIVE, not a floor")
    cell = b.rows_cell("fira_adamw", {"rank": 2, "scale": 1.0, "update_proj_gap": 200}, 0.5, "Fira r = 2")
    b.upper("fira_adamw/rows-slope", "fira_adamw", "no_theorem_sqrt_analogy", cell, window, figure=fig,
            claim="noise on 2 rows: the residual reaches the complement (slope <= −1/2 + 0.05); the GoLore floor "
                  "was the expectation", mutants=("fira_no_residual",), one_sided=UPPER_ONLY)


@rate_entry("code_paths", 20)
def galore_at_the_papers_alpha(b: Builder) -> None:
    g, fig = b.g, "code_paths"
    MQ = b.mq()
    alpha = b.cell("galore_adamw/mq-alpha", "galore_adamw", {"rank": 2, "scale": 0.25, "update_proj_gap": 200}, MQ, ISO1,
                   sqrt_horizon(2.0), seeds=g.seeds_matrix, figure=fig, label="GaLore r = 2, α = 0.25, η = 2/√T")
    b.measured("galore_adamw/alpha-slope", "galore_adamw", "no_theorem_sqrt_analogy", alpha, g.window_matrix,
               figure=fig, claim="GaLore with α = 0.25 (the paper's default), measured")


# ----------------------------------------------------------------------------- mutants
class GaloreFullRank(algorithms.REGISTRY["galore_adamw"]):
    def _layout(self, p, group):
        side, _ = super()._layout(p, {**group, "rank": 1})
        m, n = p.shape[group["batch_dims"]:]
        return side, min(int(m), int(n))


class FiraNoResidual(algorithms.REGISTRY["fira_adamw"]):
    def _projected_step(self, p, grad, R, state, group, side: str) -> None:
        with patched(_fira_module, "fira_residual", lambda G, lifted_R, alpha, form: torch.zeros_like(G)):
            super()._projected_step(p, grad, R, state, group, side)


class GaloreScaleTwice(algorithms.REGISTRY["galore_adamw"]):
    """GaLore's scale α applied twice (α² on the projected update; no claim sees it, ``verify rates --regression``
    does, on the ``galore_adamw/mq-alpha`` cell)."""

    def _projected_step(self, p, grad, R, state, group, side: str) -> None:
        super()._projected_step(p, grad, R, state, {**group, "scale": group["scale"] ** 2}, side)


declare_mutants(
    Mutant("galore_full_rank", "galore_adamw", GaloreFullRank, "the rank argument is ignored (full dimension)"),
    Mutant("fira_no_residual", "fira_adamw", FiraNoResidual, "the scaled residual is dropped"),
    Mutant("galore_scale_twice", "galore_adamw", GaloreScaleTwice, "the scale α applied twice"),
)


# ----------------------------------------------------------------------------- identity checks (verify check)
GROUP = "galore_fira"
RTOL = 1e-12
F64 = torch.float64
SHAPES = ((6, 10), (10, 6), (7, 7))


def _gradients(shape, steps, seed, growth=0.0):
    g = torch.Generator().manual_seed(seed)
    return [(1 + growth * t) * torch.randn(shape, generator=g, dtype=F64) for t in range(steps)]


def identity_first_gradient(shape) -> torch.Tensor:
    """A gradient whose SVD basis on the projected side is exactly ±I (distinct singular values)."""
    k = min(shape)
    G = torch.zeros(shape, dtype=F64)
    G[range(k), range(k)] = torch.linspace(3.0, 1.0, k, dtype=F64)
    return G


def _run(opt, param, grads):
    for G in grads:
        param.grad = G.clone()
        opt.step()
    return param.detach()


def _adamw_twin(variant, param, lr, wd, eps):
    if variant == "paper":
        return torch.optim.AdamW([param], lr=lr, eps=eps, weight_decay=wd, foreach=False)
    return algorithms.make("adam", [param], lr=lr, eps=eps, weight_decay=wd, eps_placement="hf",
                           weight_decay_timing="after")


def _identity_projector_error(name: str, quick: bool) -> float:
    worst = 0.0
    steps = 20 if quick else 100
    for variant in ("paper", "official"):
        eps = 1e-8 if variant == "paper" else 1e-6
        for shape in SHAPES:
            grads = [identity_first_gradient(shape)] + _gradients(shape, steps - 1, seed=1)
            w0 = torch.randn(shape, generator=torch.Generator().manual_seed(2), dtype=F64)
            a, b = w0.clone().requires_grad_(), w0.clone().requires_grad_()
            opt = algorithms.make(name, [a], lr=2e-2, eps=eps, weight_decay=0.1, rank=min(shape), scale=1.0,
                                  update_proj_gap=10**6, variant=variant)
            worst = max(worst, relative_error(_run(opt, a, grads), _run(_adamw_twin(variant, b, 2e-2, 0.1, eps), b, grads)))
    return worst


@check("galore_adamw(P = I, α = 1) == AdamW: paper torch.optim.AdamW, official HF (float64)", GROUP)
def galore_identity_vs_adamw(quick: bool):
    err = _identity_projector_error("galore_adamw", quick)
    return judged(err <= RTOL, f"max rel err {err:.1e} (tall, wide, square)")


@check("fira_adamw(P = I, α = 1) == AdamW: paper torch.optim.AdamW, official HF (float64)", GROUP)
def fira_identity_vs_adamw(quick: bool):
    err = _identity_projector_error("fira_adamw", quick)
    return judged(err <= RTOL, f"max rel err {err:.1e} (tall, wide, square)")


@check("galore_adamw, fixed basis == Adam on PᵀG mapped back, α = 0.3 (float64)", GROUP)
def galore_fixed_basis_vs_projected_adam(quick: bool):
    from algorithms.projection import projection_side

    worst, steps, alpha, lr = 0.0, 20 if quick else 100, 0.3, 1e-2
    for variant in ("paper", "official"):
        for shape in SHAPES:
            grads = _gradients(shape, steps, seed=3)
            w = torch.randn(shape, generator=torch.Generator().manual_seed(4), dtype=F64).requires_grad_()
            w0 = w.detach().clone()
            opt = algorithms.make("galore_adamw", [w], lr=lr, rank=3, scale=alpha, update_proj_gap=10**6,
                                  variant=variant)
            _run(opt, w, grads[:1])
            U = opt.state[w]["basis"]
            left = projection_side(*shape, "std", square=opt.defaults["square_side"]) == "left"
            proj = (lambda G: U.mT @ G) if left else (lambda G: G @ U)
            x = torch.zeros_like(proj(grads[0])).requires_grad_()
            adam = algorithms.make("adam", [x], lr=lr, eps=opt.defaults["eps"],
                                   eps_placement="torch" if variant == "paper" else "hf")
            _run(adam, x, [proj(grads[0])])
            _run(opt, w, grads[1:])
            X = _run(adam, x, [proj(G) for G in grads[1:]])
            lifted = alpha * (U @ X if left else X @ U.mT)
            worst = max(worst, relative_error(w.detach() - w0, lifted))
    return judged(worst <= RTOL, f"max rel err {worst:.1e} (tall, wide, square)")


@check("fira_adamw with gradients inside the subspace (zero residual) == galore_adamw, α = 0.3 (float64)", GROUP)
def fira_zero_residual_vs_galore(quick: bool):
    worst, steps, r = 0.0, 20 if quick else 100, 2
    for rows, cols in ((6, 10), (10, 6)):
        g = torch.Generator().manual_seed(5)
        d, k = min(rows, cols), max(rows, cols)
        A = torch.randn(d, r, generator=g, dtype=F64)
        grads = [A @ torch.randn(r, k, generator=g, dtype=F64) for _ in range(steps)]
        grads = grads if rows < cols else [G.mT for G in grads]
        w0 = torch.randn(rows, cols, generator=g, dtype=F64)
        a, b = w0.clone().requires_grad_(), w0.clone().requires_grad_()
        kw = dict(lr=1e-2, rank=r, scale=0.3, update_proj_gap=3, weight_decay=0.1, variant="paper")
        worst = max(worst, relative_error(_run(algorithms.make("fira_adamw", [a], **kw), a, grads),
                                _run(algorithms.make("galore_adamw", [b], **kw), b, grads)))
    return judged(worst <= RTOL, f"max rel err {worst:.1e} (tall, wide)")


# ----------------------------------------------------------------------------- Fira, written out
def fira_transcription(w0, grads, *, lr, alpha, rank, gap, gamma, form, scaling="column", wd=0.0,
                       betas=(0.9, 0.999), eps=1e-8, eps_s=1e-8):
    """Fira on one 2-D matrix, written out from Algorithm 1 (``form="paper"``) and from the official
    code's update (``form="official"``), sharing nothing with algorithms/:

    paper     left basis iff m ≤ n; float64 SVD, signs pinned (largest |entry| positive); bias-corrected
              N; S = G − PR; factors and limiter on the bias-corrected S; W ← (1−ηλ)W − ηα(PN + S).
    official  right basis iff m ≥ n; float32 SVD with raw signs; HF N; S = G − αPR; factors and limiter
              on the uncorrected ratio; W ← W − η(αPN + b_t S), then W ← W − ηλW.
    """
    W = w0.clone()
    m, n = W.shape
    left = m <= n if form == "paper" else m < n
    b1, b2 = betas
    M = V = P = prev = None
    for t, G in enumerate(grads, start=1):
        Gs = G if left else G.mT  # the left layout: Gs is d × k, d the projected dimension
        if (t - 1) % gap == 0:
            if form == "paper":
                U = torch.linalg.svd(Gs, full_matrices=False)[0][:, :rank]
                U = U * torch.sign(U[U.abs().argmax(dim=0), torch.arange(U.shape[1])])
            elif left:
                U = torch.linalg.svd(G.float(), full_matrices=False)[0][:, :rank].double()
            else:
                U = torch.linalg.svd(G.float(), full_matrices=False)[2][:rank, :].mT.double()
            P = U
        R = P.mT @ Gs
        if M is None:
            M, V = torch.zeros_like(R), torch.zeros_like(R)
        M = b1 * M + (1 - b1) * R
        V = b2 * V + (1 - b2) * R * R
        c1, c2 = 1 - b1**t, 1 - b2**t
        if form == "paper":
            N = (M / c1) / ((V / c2).sqrt() + eps)
            S, Nk = Gs - P @ R, N
        else:
            Nk = M / (V.sqrt() + eps)
            N = Nk * math.sqrt(c2) / c1
            S = Gs - alpha * (P @ R)
        if scaling == "column":
            S = S * torch.stack([Nk[:, i].norm() / (R[:, i].norm() + eps_s) for i in range(R.shape[1])])[None, :]
        elif scaling == "matrix":
            S = S * (Nk.norm() / (R.norm() + eps_s))
        if prev is not None and gamma is not None:
            S = S * gamma / max(float(S.norm() / (prev + eps_s)), gamma)
        prev = S.norm()
        if form == "paper":
            W = W * (1 - lr * wd)
            update = alpha * (P @ N + S)
        else:
            update = alpha * (P @ N) + math.sqrt(c2) / c1 * S
        W = W - lr * (update if left else update.mT)
        if form == "official":
            W = W - lr * wd * W
    return W


@check("fira_adamw == Algorithm 1 (paper) and the code's update (official), written out; α = 0.4, γ binding (float64)",
       GROUP)
def fira_vs_transcription(quick: bool):
    worst, steps = 0.0, 25 if quick else 100
    for variant in ("paper", "official"):
        for scaling in ("column", "matrix"):
            for shape in SHAPES:
                grads = _gradients(shape, steps, seed=6, growth=0.3)
                w0 = torch.randn(shape, generator=torch.Generator().manual_seed(7), dtype=F64)
                eps = 1e-8 if variant == "paper" else 1e-6
                expected = fira_transcription(w0, grads, lr=1e-2, alpha=0.4, rank=3, gap=4, gamma=1.01, wd=0.1,
                                              form=variant, scaling=scaling, eps=eps)
                w = w0.clone().requires_grad_()
                opt = algorithms.make("fira_adamw", [w], lr=1e-2, scale=0.4, rank=3, update_proj_gap=4,
                                      weight_decay=0.1, variant=variant, scaling=scaling)
                worst = max(worst, relative_error(_run(opt, w, grads), expected))
    return judged(worst <= RTOL, f"max rel err {worst:.1e} (2 variants × 2 scalings × tall, wide, square)")


# ----------------------------------------------------------------------------- GaLore Theorem 3.8
def fixed_projection_contraction(m: int = 12, n: int = 9, r: int = 4, s: int = 3, steps: int = 60, seed: int = 7):
    r"""GaLore Theorem 3.8 on the quadratic :math:`f(W) = \tfrac12\mathrm{tr}(W^\top BWC) - \mathrm{tr}(A^\top W)`
    (constant B, C, so L_A = L_B = L_C = 0): with fixed orthonormal P (m×r), Q (n×s) and SGD in the subspace,
    :math:`W \leftarrow W + \eta P R_t Q^\top`, :math:`R_t = P^\top G_t Q`, :math:`G_t = A - BW_tC`, the
    projected gradient contracts: :math:`\|R_{t+1}\|_F \le (1 - \eta\kappa)\|R_t\|_F` with
    :math:`\kappa = \lambda_{\min}(P^\top BP)\lambda_{\min}(Q^\top CQ)`, here with η = 1/Λ (Λ the largest
    product of eigenvalues, so every mode of I − ηM lies in [0, 1 − ηκ]). The projections are the
    toolkit's own (``project`` / ``project_back`` of :mod:`algorithms.projection`, GaLore's code path).

    Two starts: a random one (every step's ratio must stay under the bound) and the slowest mode
    R_0 = u vᵀ (the eigenvectors of the smallest eigenvalues of PᵀBP and QᵀCQ), where every ratio must
    equal the bound (it is attained). A = BW*C with W* = P X Qᵀ, so G = B(W* − W)C stays in the span
    and shrinks without an O(1) part cancelling. Returns (largest ratio over the bound from the random
    start, largest |ratio − bound| from the slowest mode, the bound).
    """
    from algorithms.projection import project, project_back

    g = torch.Generator().manual_seed(seed)

    def spd(k, lo, hi):
        U, _ = torch.linalg.qr(torch.randn(k, k, generator=g, dtype=F64))
        return U @ torch.diag(torch.linspace(lo, hi, k, dtype=F64)) @ U.T

    B, C = spd(m, 0.5, 2.0), spd(n, 0.5, 1.5)
    P, _ = torch.linalg.qr(torch.randn(m, r, generator=g, dtype=F64))
    Q, _ = torch.linalg.qr(torch.randn(n, s, generator=g, dtype=F64))
    eb, Ub = torch.linalg.eigh(P.T @ B @ P)
    ec, Uc = torch.linalg.eigh(Q.T @ C @ Q)
    kappa, top = float(eb[0] * ec[0]), float(eb[-1] * ec[-1])
    eta = 1.0 / top
    bound = 1.0 - eta * kappa

    def ratios(X):
        E = P @ X @ Q.T  # W* − W_t with W_0 = 0
        R = project(project(B @ E @ C, P, "left"), Q, "right")
        out = []
        for _ in range(steps):
            E = E - eta * project_back(project_back(R, Q, "right"), P, "left")  # W ← W + η P R Qᵀ
            R_next = project(project(B @ E @ C, P, "left"), Q, "right")
            out.append(float(torch.linalg.matrix_norm(R_next) / torch.linalg.matrix_norm(R)))
            R = R_next
        return out

    random = ratios(torch.randn(r, s, generator=g, dtype=F64))
    slowest = ratios(torch.outer(Ub[:, 0], Uc[:, 0]) / kappa)  # R_0 = u vᵀ
    return max(random) / bound, max(abs(x - bound) for x in slowest), bound


@check("GaLore Theorem 3.8: fixed P, Q, projected SGD on a quadratic: ‖R_t+1‖ <= (1 − ηκ)‖R_t‖, tight (float64)", GROUP,
       provenance="P")
def galore_theorem_3_8(quick: bool):
    """Assertable [P]: the statement is the paper's (Theorem 3.8, with L_A = L_B = L_C = 0). Fails when the
    per-step contraction exceeds the bound anywhere, or when the slowest mode does not decay at exactly
    1 − ηκ (a projection that loses or mixes directions changes that rate). It cannot tell bugs outside
    the projection (GaLore's Adam inner step is not the theorem's SGD)."""
    worst, off, bound = fixed_projection_contraction()
    ok = math.isfinite(worst) and worst <= 1 + 1e-12 and off <= 1e-9
    return judged(ok, f"random start: largest ‖R_t+1‖/‖R_t‖ over 1 − ηκ = {worst:.15f} (must be <= 1); slowest mode: "
                      f"ratios within {off:.1e} of 1 − ηκ = {bound:.9f} (the bound is attained)")
