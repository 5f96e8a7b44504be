r"""The projection toolbox on FSDP2 shards: decompositions of ``DTensor`` matrices sharded on their rows.

``torch.distributed.fsdp.fully_shard`` hands the optimizer parameters and gradients as DTensors
sharded on dimension 0 (``Shard(0)``: rank ``i`` holds rows ``G_i`` of ``G``). Products and reductions of
DTensors are exact (DTensor redistributes what an operation needs), and the cheap ones stay local:

* ``G U`` with a replicated ``U`` (``n × r``) is row-sharded, no communication (a right-side projection,
  its back-projection ``R Uᵀ``, the range finder's ``G Ω``);
* ``Uᵀ G = Σ_i U_iᵀ G_i`` with a row-sharded ``U`` is a sum of local products, all-reduced when used:
  ``r × n`` values (a left-side projection, LDAdam's ``Bᵀ U``, the sketch ``Qᵀ G``).

Only the decompositions need the whole of a matrix, and this module keeps what they see small:

=============================  =====================================================  ===================
decomposition                  how, on a row-sharded ``G`` (``m × n``, ``W`` ranks)    traffic per rank
=============================  =====================================================  ===================
top-r right singular vectors   the Gram matrix ``GᵀG = Σ_i G_iᵀ G_i`` all-reduced,     ``n × n``
of a tall ``G`` (m > n)        then its eigenvectors (``sign="max_abs"`` only)
exact SVD otherwise            ``G`` gathered (the fallback: the left singular         ``m × n``
                               vectors of a row-sharded ``G`` need every row pair)
QR of a thin ``Y`` (m × k)     ``Y`` gathered, Householder QR on every rank, the      ``m × k``
                               rows of ``Q`` kept sharded
SVD of a small ``B`` (k × n)   ``B`` all-reduced or gathered                           ``k × n``
=============================  =====================================================  ===================

The Gram route gives the singular vectors to ``ε·σ₁/σ_r`` instead of ``ε`` (the eigenvalues are the
squares): round-off in float64, which is what the FSDP2 tests assert against the single-process
reference. Under ``sign="none"`` (the ``variant="official"`` reproductions keep LAPACK's signs, which
the Gram route cannot reproduce) the exact SVD gathers ``G``. QR and the small SVDs run LAPACK on the
same full matrices as the single-process code, so their signs are the reference's.
"""

from __future__ import annotations

from typing import Any

import torch

from .distributed import is_dtensor, replicate_like

__all__ = ["project_indices_sharded", "project_back_indices_sharded", "top_singular_pairs_sharded", "replicated", "as_local", "restore_placements", "gram_right_pairs", "fix_signs_sharded", "uses_gram"]


def replicated(t: torch.Tensor) -> torch.Tensor:
    """``t`` replicated on every rank (an all-gather of a sharded DTensor, an all-reduce of a partial one)."""
    from torch.distributed.tensor import Replicate

    if all(isinstance(p, Replicate) for p in t.placements):
        return t
    return t.redistribute(placements=[Replicate()] * len(t.placements))


def as_local(t: torch.Tensor) -> torch.Tensor:
    """The whole value of ``t`` as a plain tensor on this rank (see :func:`replicated`)."""
    return replicated(t).to_local() if is_dtensor(t) else t


def restore_placements(result: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A plain ``result`` computed from the whole of ``like`` (same shape), placed as ``like`` is (a replicated
    value is cut to this rank's rows without communication)."""
    from torch.distributed.tensor import Partial

    full = replicate_like(like, result)
    if tuple(result.shape) != tuple(like.shape) or any(isinstance(p, Partial) for p in like.placements):
        return full
    return full.redistribute(placements=like.placements)


def uses_gram(G: torch.Tensor, side: str, sign: str) -> bool:
    """Whether the exact top-r basis of the row-sharded ``G`` comes from the all-reduced Gram matrix: a right-side
    basis of a tall matrix (``n × n`` traffic instead of ``m × n``), signs by ``max_abs``."""
    from torch.distributed.tensor import Shard

    *_, m, n = G.shape
    row_sharded = any(isinstance(p, Shard) and p.dim == G.dim() - 2 for p in G.placements)
    return row_sharded and side == "right" and m > n and sign == "max_abs"


def gram_right_pairs(G: torch.Tensor, rank: int, compute_dtype: torch.dtype | None) -> tuple[torch.Tensor, torch.Tensor]:
    r"""``(V [..., n, r], σ [..., r])``: the top-``rank`` right singular vectors and values of the DTensor ``G``
    from :math:`G^\top G = \sum_i G_i^\top G_i` (all-reduced) and its eigendecomposition; replicated, plain
    tensors (the caller fixes the signs). NaN/Inf in ``G`` give NaN factors."""
    from .projection import _decomposition_dtype, _nan_where, _nonfinite_matrices

    work_dtype = _decomposition_dtype(G, compute_dtype)
    gram = as_local(G.mT.to(work_dtype) @ G.to(work_dtype))
    bad = _nonfinite_matrices(gram)
    evals, evecs = torch.linalg.eigh(torch.where(bad, torch.zeros_like(gram), gram))
    top = torch.arange(evals.shape[-1] - 1, evals.shape[-1] - 1 - rank, -1, device=evals.device)
    values = evals.index_select(-1, top).clamp_min(0).sqrt()
    vectors = evecs.index_select(-1, top)
    vectors, values = _nan_where(bad, vectors, values.unsqueeze(-1))
    return vectors.to(G.dtype), values.squeeze(-1).to(G.dtype)


def place_basis(basis: torch.Tensor, G: torch.Tensor, side: str) -> torch.Tensor:
    """A plain basis of the DTensor ``G``: a left basis (``m × r``) sharded on its rows as ``G`` is, a right basis
    (``n × r``) replicated (no communication either way)."""
    from torch.distributed.tensor import Replicate, Shard

    full = replicate_like(G, basis)
    if side == "left":
        rows = G.dim() - 2
        full = full.redistribute(placements=[Shard(rows) if isinstance(p, Shard) and p.dim == rows else Replicate()
                                             for p in G.placements])
    return full


def top_singular_pairs_sharded(G: torch.Tensor, rank: int, side: str, *, compute_dtype: torch.dtype | None,
                               sign: str) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`algorithms.projection.top_singular_pairs` of a DTensor ``G`` (see the module docstring)."""
    from .projection import fix_signs, top_singular_pairs

    if uses_gram(G, side, sign):
        basis, values = gram_right_pairs(G, rank, compute_dtype)
        (basis,) = fix_signs(basis)
        basis, values = basis.contiguous(), values.contiguous()
    else:
        basis, values = top_singular_pairs(as_local(G), rank, side, compute_dtype=compute_dtype, sign=sign)
    return place_basis(basis, G, side), replicate_like(G, values)


def fix_signs_sharded(U: torch.Tensor, *others: torch.Tensor) -> tuple[Any, ...]:
    """:func:`algorithms.projection.fix_signs` for DTensor bases: the largest-|·| entry of each column is found
    on the whole (thin) column; the flips are applied to every placement without moving the bases."""
    from .projection import fix_signs

    full = as_local(U)
    if full.shape[-2] == 0 or full.shape[-1] == 0:
        return (U, *others)
    ones = torch.ones(full.shape[:-2] + (1, full.shape[-1]), dtype=full.dtype, device=full.device)
    signs = fix_signs(full, ones)[1]  # the flips alone: fix_signs applies them to ``ones``
    return tuple(t * (replicate_like(t, signs) if is_dtensor(t) else signs) for t in (U, *others))


def _row_range(t: torch.Tensor) -> tuple[int, int]:
    """``(first row, row count)`` of this rank's shard of a DTensor sharded on dimension 0 of a 1-D mesh."""
    from torch.distributed.tensor._utils import compute_local_shape_and_global_offset

    local_shape, offset = compute_local_shape_and_global_offset(t.shape, t.device_mesh, t.placements)
    return int(offset[0]), int(local_shape[0])


def _check_row_sharded(t: torch.Tensor, what: str) -> None:
    from torch.distributed.tensor import Shard

    if t.device_mesh.ndim != 1 or tuple(t.placements) != (Shard(0),) or t.dim() != 2:
        raise NotImplementedError(f"{what}: index projections on DTensors support matrices sharded on their rows over "
                                  f"a 1-D mesh (FSDP2), got placements {t.placements} of shape {tuple(t.shape)}")


def project_indices_sharded(G: torch.Tensor, idx: torch.Tensor, side: str) -> torch.Tensor:
    """:func:`algorithms.projection.project_indices` of a row-sharded DTensor ``G`` (plain ``idx``, the same on
    every rank): selected columns stay row-sharded (no communication); selected rows are taken where they
    live and all-reduced (``r × n``)."""
    from torch.distributed.tensor import DTensor, Partial, Shard

    _check_row_sharded(G, "project_indices")
    local = G.to_local()
    idx = idx.to(local.device)
    if side == "right":
        out = torch.gather(local, -1, idx.unsqueeze(-2).expand(local.shape[0], idx.shape[-1]))
        return DTensor.from_local(out, G.device_mesh, [Shard(0)], run_check=False, shape=torch.Size((G.shape[0], idx.shape[-1])),
                                  stride=(idx.shape[-1], 1))
    first, count = _row_range(G)
    mine = (idx >= first) & (idx < first + count)
    out = local.new_zeros(idx.shape[-1], local.shape[-1])
    out[mine] = local[idx[mine] - first]
    partial = DTensor.from_local(out, G.device_mesh, [Partial()], run_check=False)
    return replicated(partial)


def project_back_indices_sharded(R: torch.Tensor, idx: torch.Tensor, side: str, like: torch.Tensor) -> torch.Tensor:
    """:func:`algorithms.projection.project_back_indices` onto the rows of the row-sharded DTensor ``like``."""
    from torch.distributed.tensor import DTensor

    _check_row_sharded(like, "project_back_indices")
    first, count = _row_range(like)
    local_r = replicated(R).to_local() if side == "left" else R.to_local()
    idx = idx.to(local_r.device)
    out = local_r.new_zeros(count, like.shape[-1])
    if side == "right":
        out.scatter_(-1, idx.unsqueeze(-2).expand(count, idx.shape[-1]), local_r)
    else:
        mine = (idx >= first) & (idx < first + count)
        out[idx[mine] - first] = local_r[mine]
    return DTensor.from_local(out, like.device_mesh, like.placements, run_check=False, shape=like.shape,
                              stride=like.stride())
