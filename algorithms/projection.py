r"""The projection toolbox shared by every low-rank method (GaLore, Fira, LDAdam, AdaRankGrad and
Subspace-Momentum). Everything here is a plain function on tensors, batched over any leading
independent-problem dimensions ``[..., m, n]``.

Conventions
-----------
A **basis** is a tensor ``U`` of shape ``[..., d, r]`` with orthonormal columns. Its **side** says
which dimension of a gradient :math:`G \in \mathbb{R}^{m \times n}` it spans:

=========  =====  ======================  ==========================  =================
side       d      project :math:`R`       back-project                 state shape
=========  =====  ======================  ==========================  =================
``left``   m      :math:`U^\top G`         :math:`U R`                  r × n
``right``  n      :math:`G U`              :math:`R U^\top`             m × r
=========  =====  ======================  ==========================  =================

(The GaLore/Fira codes store a right basis as the ``r × n`` matrix :math:`U^\top`; the numbers are
identical, only the stored layout differs.) :math:`U U^\top` is the orthogonal projector onto the
subspace, so the residual :math:`G - U U^\top G` (left) lies in its complement.

**Side rules** (the authors' codes differ on square matrices, hence the explicit ``square=``):

================  ==========  ==========  =========================================
rule              m < n       m > n       m = n
================  ==========  ==========  =========================================
``std``           left        right       ``square`` (GaLore/Fira/SN-SM: right; LDAdam: left)
``reverse_std``   right       left        the opposite of ``square``
``left``          left        left        left
``right``         right       right       right
================  ==========  ==========  =========================================

``std`` always projects the *smaller* dimension, so the states have ``r × max(m, n)`` entries.

**Sign convention.** Singular vectors are unique only up to sign. ``sign="max_abs"`` flips each
basis vector so that its largest-magnitude entry is positive (ties: the first such entry), which
makes a basis a deterministic function of the subspace's spanning vectors across LAPACK builds and
devices. ``sign="none"`` keeps whatever ``torch.linalg.svd`` returned; the ``variant="official"``
reproductions use it, because the authors' codes do, and their non-rotated moments depend on it.

**Non-finite input.** ``torch.linalg.svd``/``qr`` raise on NaN/Inf on the CPU. Here a matrix holding
a NaN or Inf gives NaN factors instead (per batch element, without a host synchronisation), so under
``nonfinite="ignore"`` (not the default) NaN propagates exactly as plain arithmetic would.

**Decomposition dtype.** ``compute_dtype=None`` decomposes in the input's dtype (``variant="paper"``:
float64 stays float64). ``compute_dtype=torch.float32`` reproduces the authors' codes, which run
``torch.linalg.svd`` / ``qr`` in float32 and cast back; that is the only downcast in the package.
float16/bfloat16 inputs are always decomposed in float32 (no half-precision SVD/QR exists).
"""

from __future__ import annotations

import math

import torch

from .validation import check_choice, check_int
from .distributed import is_dtensor, replicate_like, settle

__all__ = [
    "SIDE_RULES",
    "SIGN_CONVENTIONS",
    "projection_side",
    "projected_dim",
    "validate_rank",
    "project",
    "project_back",
    "residual",
    "change_of_basis",
    "rotate_coordinates",
    "fix_signs",
    "top_singular_pairs",
    "top_singular_basis",
    "randomized_svd",
    "randomized_singular_pairs",
    "orthonormalize",
    "block_power_step",
    "energy_rank",
    "uniform_indices",
    "topk_indices",
    "project_indices",
    "project_back_indices",
]

SIDE_RULES = ("std", "reverse_std", "left", "right")
SIDES = ("left", "right")
SIGN_CONVENTIONS = ("max_abs", "none")
RANK_OVERFLOW = ("raise", "truncate")


# ----------------------------------------------------------------------------- sides and ranks
def projection_side(m: int, n: int, rule: str, *, square: str) -> str:
    """The side (``"left"``/``"right"``) that ``rule`` picks for an ``m × n`` matrix (see module doc)."""
    check_choice("proj_side", rule, SIDE_RULES)
    check_choice("square", square, SIDES)
    if rule in SIDES:
        return rule
    if m == n:
        std = square
    else:
        std = "left" if m < n else "right"
    if rule == "std":
        return std
    return "right" if std == "left" else "left"


def projected_dim(m: int, n: int, side: str) -> int:
    """The dimension a basis on ``side`` spans: m (left) or n (right)."""
    return m if side == "left" else n


def validate_rank(rank, d: int, *, overflow: str = "raise", name: str = "rank") -> int:
    """Check ``1 <= rank <= d`` (d = the projected dimension).

    ``overflow="truncate"`` returns ``min(rank, d)`` instead of raising, which is what the GaLore
    and Fira codes do silently (only for ``variant="official"``).
    """
    rank = check_int(name, rank, minimum=1)
    check_choice("overflow", overflow, RANK_OVERFLOW)
    if rank > d:
        if overflow == "truncate":
            return d
        raise ValueError(f"{name} must be <= the projected dimension {d} for this parameter, got {rank}")
    return rank


# ----------------------------------------------------------------------------- dense bases
def project(G: torch.Tensor, U: torch.Tensor, side: str) -> torch.Tensor:
    """Coordinates of ``G`` in the subspace: ``Uᵀ G`` (left) or ``G U`` (right). On FSDP2 shards the left
    product is all-reduced (``r × n`` values)."""
    return settle(U.mT @ G) if side == "left" else G @ U


def project_back(R: torch.Tensor, U: torch.Tensor, side: str) -> torch.Tensor:
    """Lift subspace coordinates back to the full shape: ``U R`` (left) or ``R Uᵀ`` (right)."""
    return U @ R if side == "left" else R @ U.mT


def residual(G: torch.Tensor, U: torch.Tensor, side: str) -> torch.Tensor:
    """The part of ``G`` orthogonal to the subspace, ``G − U Uᵀ G`` (left) or ``G − G U Uᵀ`` (right)."""
    return G - project_back(project(G, U, side), U, side)


def change_of_basis(old: torch.Tensor, new: torch.Tensor) -> torch.Tensor:
    r""":math:`C = U_{new}^\top U_{old}` (``[..., r_new, r_old]``): subspace coordinates in the old basis →
    coordinates in the new one, on either side (GaLore's moment transfer, LDAdam's :math:`C_t = P_t^\top P_{t-1}`,
    AdaRankGrad's :math:`R = Q_{new}^\top Q_{old}`). On FSDP2 shards a left basis is row-sharded: the product is
    all-reduced (``r × r`` values)."""
    return settle(new.mT @ old)


def rotate_coordinates(X: torch.Tensor, C: torch.Tensor, side: str) -> torch.Tensor:
    """Apply a change of basis to subspace coordinates: ``C X`` (left, ``r × n``) or ``X Cᵀ`` (right, ``m × r``)."""
    return C @ X if side == "left" else X @ C.mT


def fix_signs(U: torch.Tensor, *others: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Flip each column of ``U`` (``[..., d, r]``) so its largest-|·| entry is positive.

    ``others`` are tensors whose *columns* pair with U's (e.g. ``Vh.mT`` of the same SVD); they get the
    same flips, so ``U diag(S) Vh`` is unchanged.
    """
    if is_dtensor(U) or any(is_dtensor(o) for o in others):
        from ._sharded import fix_signs_sharded

        return fix_signs_sharded(U, *others)
    if U.shape[-2] == 0 or U.shape[-1] == 0:
        return (U, *others)
    idx = U.abs().argmax(dim=-2, keepdim=True)  # [..., 1, r]
    signs = torch.gather(U, -2, idx).sign()
    signs = torch.where(signs == 0, torch.ones_like(signs), signs)
    return (U * signs, *(o * signs for o in others))


def _nonfinite_matrices(A: torch.Tensor) -> torch.Tensor:
    """Mask ``[..., 1, 1]`` of the matrices of ``A`` that hold a NaN or Inf (no host synchronisation)."""
    return ~torch.isfinite(A).flatten(-2).all(-1)[..., None, None]


def _nan_where(bad: torch.Tensor, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    return tuple(torch.where(bad.reshape(bad.shape[:-2] + (1,) * (t.dim() - bad.dim() + 2)), torch.full_like(t, math.nan), t) for t in tensors)


def _decomposition_dtype(A: torch.Tensor, compute_dtype: torch.dtype | None) -> torch.dtype:
    """``compute_dtype``, else the input's dtype, raised to float32 for half precision (LAPACK and
    cuSOLVER have no float16/bfloat16 SVD or QR)."""
    if compute_dtype is not None:
        return compute_dtype
    return torch.float32 if A.dtype in (torch.float16, torch.bfloat16) else A.dtype


def _svd(A: torch.Tensor, compute_dtype: torch.dtype | None):
    """Thin SVD in ``compute_dtype``, cast back. Non-finite matrices (which LAPACK refuses) give NaN
    factors instead of an exception, so NaN propagates as arithmetic would (``nonfinite="ignore"``).
    A DTensor is decomposed whole on every rank (:mod:`algorithms._sharded`); the factors are replicated."""
    if is_dtensor(A):
        from ._sharded import as_local

        return tuple(replicate_like(A, f) for f in _svd(as_local(A), compute_dtype))
    work = A.to(_decomposition_dtype(A, compute_dtype))
    bad = _nonfinite_matrices(work)
    U, S, Vh = torch.linalg.svd(torch.where(bad, torch.zeros_like(work), work), full_matrices=False)
    U, S, Vh = _nan_where(bad, U, S.unsqueeze(-1), Vh)
    return U.to(A.dtype), S.squeeze(-1).to(A.dtype), Vh.to(A.dtype)


def top_singular_pairs(
    G: torch.Tensor,
    rank: int,
    side: str,
    *,
    compute_dtype: torch.dtype | None = None,
    sign: str = "max_abs",
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(basis [..., d, r], singular values [..., r])``: the top-``rank`` left (side="left") or right
    (side="right") singular vectors of ``G`` and their singular values, by an exact thin SVD.
    ``rank`` must already be validated."""
    check_choice("sign", sign, SIGN_CONVENTIONS)
    if is_dtensor(G):
        from ._sharded import top_singular_pairs_sharded

        return top_singular_pairs_sharded(G, rank, side, compute_dtype=compute_dtype, sign=sign)
    U, S, Vh = _svd(G, compute_dtype)
    basis = U[..., :, :rank] if side == "left" else Vh[..., :rank, :].mT
    if sign == "max_abs":
        (basis,) = fix_signs(basis)
    return basis.contiguous(), S[..., :rank].contiguous()


def top_singular_basis(
    G: torch.Tensor,
    rank: int,
    side: str,
    *,
    compute_dtype: torch.dtype | None = None,
    sign: str = "max_abs",
) -> torch.Tensor:
    """The basis of :func:`top_singular_pairs` alone, ``[..., d, r]``."""
    return top_singular_pairs(G, rank, side, compute_dtype=compute_dtype, sign=sign)[0]


def orthonormalize(Y: torch.Tensor, *, compute_dtype: torch.dtype | None = None) -> torch.Tensor:
    """Orthonormal basis of the columns of ``Y`` (``[..., d, k]``, k ≤ d) by Householder QR (a DTensor ``Y`` is
    gathered, decomposed on every rank and ``Q`` placed as ``Y`` was: :mod:`algorithms._sharded`)."""
    if is_dtensor(Y):
        from ._sharded import as_local, restore_placements

        return restore_placements(orthonormalize(as_local(Y), compute_dtype=compute_dtype), Y)
    work = Y.to(_decomposition_dtype(Y, compute_dtype))
    bad = _nonfinite_matrices(work)
    Q, _ = torch.linalg.qr(torch.where(bad, torch.zeros_like(work), work), mode="reduced")
    (Q,) = _nan_where(bad, Q)
    return Q.to(Y.dtype)


def randomized_svd(
    G: torch.Tensor,
    rank: int,
    *,
    oversampling: int,
    power_iters: int,
    generator: torch.Generator,
    compute_dtype: torch.dtype | None = None,
    sign: str = "max_abs",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""Halko–Martinsson–Tropp randomized SVD (HMT 2011, Alg. 4.4 + 5.1): ``(U, S, Vh)`` of rank ``k``.

    .. math::

       \Omega \sim \mathcal N(0,1)^{n \times (k+p)},\quad
       Y = (G G^\top)^q G \Omega \ (\text{re-orthonormalized after every product}),\quad
       Q = \operatorname{qr}(Y),\quad B = Q^\top G = \tilde U S V^\top,\quad U = Q \tilde U

    with ``k = min(rank, m, n)`` and the sketch width ``k + p`` capped at ``min(m, n)``. Ω is drawn
    from ``generator`` (on the generator's device, in ``G``'s dtype), one independent block per
    leading batch index, in order. Returns U ``[..., m, k]``, S ``[..., k]``, Vh ``[..., k, n]``.
    """
    check_int("oversampling", oversampling, minimum=0)
    check_int("power_iters", power_iters, minimum=0)
    check_choice("sign", sign, SIGN_CONVENTIONS)
    *batch, m, n = G.shape
    k = min(rank, m, n)
    width = min(k + oversampling, m, n)
    omega = torch.randn((*batch, n, width), generator=generator, dtype=G.dtype, device=G.device)
    omega = replicate_like(G, omega)  # on FSDP2 shards: the same draw on every rank
    Q = orthonormalize(G @ omega, compute_dtype=compute_dtype)
    for _ in range(power_iters):
        Z = orthonormalize(G.mT @ Q, compute_dtype=compute_dtype)
        Q = orthonormalize(G @ Z, compute_dtype=compute_dtype)
    Ub, S, Vh = _svd(Q.mT @ G, compute_dtype)
    U = Q @ Ub
    U, S, Vh = U[..., :k], S[..., :k], Vh[..., :k, :]
    if sign == "max_abs":
        U, V = fix_signs(U, Vh.mT)
        Vh = V.mT
    return U.contiguous(), S.contiguous(), Vh.contiguous()


def randomized_singular_pairs(
    G: torch.Tensor,
    rank: int,
    side: str,
    *,
    oversampling: int,
    power_iters: int,
    generator: torch.Generator,
    compute_dtype: torch.dtype | None = None,
    sign: str = "max_abs",
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`top_singular_pairs` by the randomized SVD: ``(basis [..., d, k], values [..., k])``.

    For ``side="right"`` the sketch runs on ``Gᵀ`` (whose left singular vectors are G's right ones), so
    Ω always has the projected dimension's complement as its row count.
    """
    source = G if side == "left" else G.mT
    U, S, _ = randomized_svd(source, rank, oversampling=oversampling, power_iters=power_iters,
                             generator=generator, compute_dtype=compute_dtype, sign=sign)
    return U, S


def block_power_step(
    B: torch.Tensor,
    U_prev: torch.Tensor,
    side: str,
    *,
    compute_dtype: torch.dtype | None = None,
) -> torch.Tensor:
    r"""One block power iteration warm-started at ``U_prev``, then QR (LDAdam's subspace update).

    left: :math:`U = \operatorname{qr}(B (B^\top U_{prev}))`; right: :math:`U = \operatorname{qr}(B^\top (B U_{prev}))`.
    Both are one step of subspace iteration on :math:`BB^\top` (resp. :math:`B^\top B`).
    """
    if side == "left":  # on FSDP2 shards the inner product is all-reduced (n × r), the outer one stays local
        Y = B @ settle(B.mT @ U_prev)
    else:
        Y = settle(B.mT @ (B @ U_prev))
    U = orthonormalize(Y, compute_dtype=compute_dtype)
    if is_dtensor(U_prev) and U.placements != U_prev.placements:  # FSDP2: the new basis placed as the old one
        U = U.redistribute(placements=U_prev.placements)
    return U


def energy_rank(
    S: torch.Tensor,
    total_energy: torch.Tensor,
    threshold: float,
    *,
    min_rank: int,
    max_rank: int,
) -> torch.Tensor:
    r"""Smallest r in [min_rank, max_rank] with :math:`\sum_{i \le r} \sigma_i^2 \ge \text{threshold} \cdot E`.

    ``S`` holds singular values in descending order ``[..., k]``; ``total_energy`` is :math:`E` (normally
    :math:`\|G\|_F^2`, which a truncated SVD does not see in full), shape ``[...]``. ``threshold`` is the
    *kept* energy fraction in [0, 1]. If no r ≤ min(max_rank, k) reaches it, the result is
    min(max_rank, k). Returns an int64 tensor of shape ``[...]``.
    """
    k = S.shape[-1]
    cap = min(max_rank, k)
    kept = (S[..., :cap] ** 2).cumsum(-1)
    target = (threshold * total_energy).unsqueeze(-1)
    reached = kept >= target * (1 - 8 * torch.finfo(S.dtype).eps)  # round-off in the cumulative sum
    first = torch.where(reached.any(-1), reached.to(torch.int64).argmax(-1) + 1, torch.full_like(kept[..., 0], cap, dtype=torch.int64))
    return first.clamp(min=min(min_rank, cap), max=cap)


# ----------------------------------------------------------------------------- index bases
def uniform_indices(
    d: int,
    rank: int,
    generator: torch.Generator,
    batch_shape: tuple[int, ...] | torch.Size = (),
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """``rank`` distinct indices of ``range(d)`` drawn uniformly, one independent draw per batch index.

    The selection matrix with these rows of the identity has orthonormal rows, so index projectors are
    orthogonal projectors onto coordinate subspaces. Returns int64 ``[*batch_shape, rank]``.
    """
    count = math.prod(batch_shape)
    draws = [torch.randperm(d, generator=generator, device=device)[:rank] for _ in range(count)]
    if not draws:
        return torch.empty((*batch_shape, rank), dtype=torch.int64, device=device)
    return torch.stack(draws).reshape(*batch_shape, rank)


def topk_indices(G: torch.Tensor, rank: int, side: str) -> torch.Tensor:
    """Indices of the ``rank`` rows (side="left") or columns (side="right") of ``G`` with the largest
    Euclidean norm, in descending order of norm. Returns int64 ``[..., rank]``."""
    norms = G.norm(dim=-1) if side == "left" else G.norm(dim=-2)
    return norms.topk(rank, dim=-1, sorted=True).indices


def project_indices(G: torch.Tensor, idx: torch.Tensor, side: str) -> torch.Tensor:
    """The selected rows (left, ``[..., r, n]``) or columns (right, ``[..., m, r]``) of ``G``."""
    if is_dtensor(G):
        from ._sharded import as_local, project_indices_sharded

        return project_indices_sharded(G, as_local(idx), side)
    if side == "left":
        return torch.gather(G, -2, idx.unsqueeze(-1).expand(*idx.shape, G.shape[-1]))
    return torch.gather(G, -1, idx.unsqueeze(-2).expand(*G.shape[:-1], idx.shape[-1]))


def project_back_indices(R: torch.Tensor, idx: torch.Tensor, side: str, shape: torch.Size | tuple[int, ...],
                         like: torch.Tensor | None = None) -> torch.Tensor:
    """Scatter selected rows/columns back into a zero tensor of the full ``shape`` (placed as the DTensor ``like``
    on FSDP2 shards)."""
    if is_dtensor(R) and like is not None:
        from ._sharded import as_local, project_back_indices_sharded

        return project_back_indices_sharded(R, as_local(idx), side, like)
    out = R.new_zeros(shape)
    if side == "left":
        return out.scatter(-2, idx.unsqueeze(-1).expand(*idx.shape, shape[-1]), R)
    return out.scatter(-1, idx.unsqueeze(-2).expand(*shape[:-1], idx.shape[-1]), R)
