r"""Spectrum tools for gradient-rank measurements (docs/rank.md §1 and §4).

For a matrix :math:`X \in \mathbb{R}^{m \times n}` with singular values
:math:`\sigma_1 \ge \sigma_2 \ge \dots \ge \sigma_k \ge 0` (:math:`k = \min(m, n)`) and energy
:math:`E = \|X\|_F^2 = \sum_i \sigma_i^2`:

.. math::

   \begin{aligned}
   \operatorname{sr}(X) &= \frac{\|X\|_F^2}{\|X\|_2^2} = \frac{E}{\sigma_1^2}
      &&\text{stable rank, } 1 \le \operatorname{sr} \le \operatorname{rank} X \\
   r(\varepsilon) &= \min\Big\{ r : \sum_{i \le r} \sigma_i^2 \ge (1-\varepsilon)\, E \Big\}
                 = \#\Big\{ r \in \{0,\dots,k-1\} : \sum_{i > r} \sigma_i^2 > \varepsilon E \Big\}
      &&\text{energy rank} \\
   \kappa(X) &= \frac{\|X - \sigma_1 u_1 v_1^\top\|_F}{\|X\|_F}
              = \sqrt{\frac{\sum_{i \ge 2} \sigma_i^2}{E}} = \sqrt{1 - 1/\operatorname{sr}(X)}
      &&\text{distance from rank one}
   \end{aligned}

Numerics (float64 reference quality):

* the singular values come from ``torch.linalg.svdvals`` in the input dtype (no downcast);
* tails :math:`\sum_{i>r}\sigma_i^2` are summed from the smallest value up, so :math:`\kappa` and
  :math:`r(\varepsilon)` are computed from the tail directly and never from the cancelling
  difference :math:`1 - 1/\operatorname{sr}`;
* :math:`\operatorname{sr} \ge 1` holds exactly in floating point (a sum of non-negative terms that
  contains :math:`\sigma_1^2`);
* the zero matrix has :math:`E = 0`: ``sr`` and ``kappa`` are NaN (undefined), :math:`r(\varepsilon) = 0`.

Everything is **batched**: a tensor ``[..., m, n]`` gives results of shape ``[...]`` and no
reduction crosses the leading dimensions (independent problems, e.g. seeds or training steps).

Shapes that are not 2-D (:func:`as_matrix`): an N-D tensor (N ≥ 3, e.g. a conv kernel) is viewed as
the matrix ``shape[0] × prod(shape[1:])``, the usual fan-out × fan-in rule; 0-D and 1-D tensors have
no matrix rank and are skipped by :func:`layer_spectra`.

**Float floor (docs/rank.md §4).** Once a gradient's norm reaches the round-off level of
the computation that produced it, its spectrum is noise and the stable rank jumps back up. The rule
used here: stop measuring at the first step with
:math:`\|G_t\|_F < \text{factor} \cdot \texttt{eps(dtype)} \cdot \|G_0\|_F`, factor :math:`10^3`
(:func:`float_floor_threshold`, :func:`steps_before_floor`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

import torch

from algorithms.validation import check_int, check_positive, check_real

__all__ = [
    "FLOOR_FACTOR",
    "as_matrix",
    "singular_values",
    "energy",
    "tail_energies",
    "stable_rank",
    "energy_rank",
    "rank_one_residual",
    "gaussian_stable_rank",
    "float_floor_threshold",
    "steps_before_floor",
    "Spectrum",
    "spectrum",
    "layer_spectra",
]

#: the float-floor factor of docs/rank.md §4 (stop when ‖G_t‖_F < 1e3·eps·‖G_0‖_F)
FLOOR_FACTOR = 1e3


# ----------------------------------------------------------------------------- inputs
def as_matrix(G: torch.Tensor, batch_dims: int = 0) -> torch.Tensor | None:
    """The matrix view used for ranks: ``[*batch, m, n]`` unchanged, ``[*batch, d0, d1, ...]`` viewed as
    ``[*batch, d0, d1·d2·…]``; ``None`` for problem shapes with fewer than two dimensions."""
    check_int("batch_dims", batch_dims, minimum=0)
    if G.dim() < batch_dims:
        raise ValueError(f"batch_dims={batch_dims} but the tensor has only {G.dim()} dimensions")
    problem = G.shape[batch_dims:]
    if len(problem) < 2:
        return None
    if len(problem) == 2:
        return G
    return G.reshape(*G.shape[:batch_dims], problem[0], math.prod(problem[1:]))


def _check_matrix(G: torch.Tensor, name: str = "G") -> None:
    if not isinstance(G, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(G).__name__}")
    if G.dim() < 2:
        raise ValueError(f"{name} must have at least 2 dimensions [..., m, n], got shape {tuple(G.shape)}")
    if G.is_complex():
        raise TypeError(f"{name} must be real; complex spectra are not supported (got {G.dtype})")
    if not G.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {G.dtype}")


def singular_values(G: torch.Tensor) -> torch.Tensor:
    """Singular values ``[..., min(m, n)]`` in descending order, in ``G``'s dtype (batched)."""
    _check_matrix(G)
    if G.shape[-1] == 0 or G.shape[-2] == 0:
        return G.new_zeros((*G.shape[:-2], 0))
    return torch.linalg.svdvals(G)


def _check_sigma(sigma: torch.Tensor) -> None:
    if not isinstance(sigma, torch.Tensor) or sigma.dim() < 1:
        raise ValueError("sigma must be a tensor of singular values [..., k]")


# ----------------------------------------------------------------------------- spectral quantities
def tail_energies(sigma: torch.Tensor) -> torch.Tensor:
    r""":math:`T_r = \sum_{i > r} \sigma_i^2` for r = 0 … k−1 (``[..., k]``; :math:`T_0 = E`),
    accumulated from the smallest singular value up (accurate tails)."""
    _check_sigma(sigma)
    sq = sigma.square()
    return sq.flip(-1).cumsum(-1).flip(-1)


def energy(sigma: torch.Tensor) -> torch.Tensor:
    r""":math:`E = \|X\|_F^2 = \sum_i \sigma_i^2` (``[...]``)."""
    _check_sigma(sigma)
    if sigma.shape[-1] == 0:
        return sigma.new_zeros(sigma.shape[:-1])
    return tail_energies(sigma)[..., 0]


def stable_rank(sigma: torch.Tensor) -> torch.Tensor:
    r""":math:`\operatorname{sr} = \sum_i \sigma_i^2 / \sigma_1^2` (``[...]``; NaN for a zero matrix)."""
    _check_sigma(sigma)
    if sigma.shape[-1] == 0:
        return sigma.new_full(sigma.shape[:-1], math.nan)
    top = sigma[..., 0].square()
    E = energy(sigma)
    return torch.where(top > 0, E / torch.where(top > 0, top, torch.ones_like(top)), torch.full_like(E, math.nan))


def energy_rank(sigma: torch.Tensor, eps: float) -> torch.Tensor:
    r""":math:`r(\varepsilon)`, the smallest rank keeping a fraction :math:`1 - \varepsilon` of the energy
    (int64 ``[...]``). ``eps`` in [0, 1]; ``eps=0`` counts the non-zero singular values."""
    _check_sigma(sigma)
    eps = check_real("eps", eps)
    if not 0.0 <= eps <= 1.0:
        raise ValueError(f"eps must be in [0, 1], got {eps}")
    if sigma.shape[-1] == 0:
        return torch.zeros(sigma.shape[:-1], dtype=torch.int64, device=sigma.device)
    tails = tail_energies(sigma)
    budget = eps * tails[..., :1]
    return (tails > budget).sum(-1)


def rank_one_residual(sigma: torch.Tensor) -> torch.Tensor:
    r""":math:`\kappa = \|X - \sigma_1 u_1 v_1^\top\|_F / \|X\|_F = \sqrt{\sum_{i\ge2}\sigma_i^2 / E}`
    (``[...]``; NaN for a zero matrix, 0 for a single singular value)."""
    _check_sigma(sigma)
    if sigma.shape[-1] == 0:
        return sigma.new_full(sigma.shape[:-1], math.nan)
    tails = tail_energies(sigma)
    E = tails[..., 0]
    rest = tails[..., 1] if sigma.shape[-1] > 1 else torch.zeros_like(E)
    safe = torch.where(E > 0, E, torch.ones_like(E))
    return torch.where(E > 0, (rest / safe).sqrt(), torch.full_like(E, math.nan))


def gaussian_stable_rank(m: int, n: int) -> float:
    r"""The noise level of docs/rank.md §3: :math:`mn / (\sqrt m + \sqrt n)^2`, the stable rank
    of an i.i.d. Gaussian ``m × n`` matrix to leading order (:math:`E\|Z\|_F^2 = mn`, and
    :math:`\|Z\|_2 \to \sqrt m + \sqrt n`, Bai–Yin/Geman) [D]. Finite matrices sit a little above it
    (their top singular value is a little below the edge on average)."""
    m = check_int("m", m, minimum=1)
    n = check_int("n", n, minimum=1)
    return m * n / (math.sqrt(m) + math.sqrt(n)) ** 2


# ----------------------------------------------------------------------------- float floor
def float_floor_threshold(initial_norm: torch.Tensor | float, dtype: torch.dtype, factor: float = FLOOR_FACTOR):
    r"""The norm below which a gradient's spectrum is round-off: :math:`\text{factor}\cdot\texttt{eps}\cdot\|G_0\|_F`."""
    check_positive("factor", factor)
    return factor * torch.finfo(dtype).eps * initial_norm


def steps_before_floor(norms: torch.Tensor, dtype: torch.dtype | None = None, factor: float = FLOOR_FACTOR) -> torch.Tensor:
    r"""How many leading entries of a norm trace ``[T, ...]`` are measurable (int64 ``[...]``).

    ``norms[0]`` is :math:`\|G_0\|_F`; the count stops at the **first** step whose norm falls below
    :func:`float_floor_threshold` (later steps are not measured even if the norm comes back up).
    ``dtype`` is the precision of the computation that produced the gradients (default: ``norms``'s).
    """
    if not isinstance(norms, torch.Tensor) or norms.dim() < 1:
        raise ValueError("norms must be a tensor [T, ...] of gradient norms over steps")
    dtype = norms.dtype if dtype is None else dtype
    threshold = float_floor_threshold(norms[:1], dtype, factor)
    below = norms < threshold
    below_or_nan = below | torch.isnan(norms)
    reached = below_or_nan.cumsum(0) > 0  # True from the first crossing on
    return (~reached).sum(0)


# ----------------------------------------------------------------------------- summaries
@dataclass(frozen=True)
class Spectrum:
    """Spectral summary of a (batch of) matrices; every field has the batch shape ``[...]`` except
    ``sigma`` (``[..., k]``), ``top`` (``[..., min(k, top)]``) and ``energy_ranks`` (one ``[...]`` per ε)."""

    sigma: torch.Tensor
    frobenius_sq: torch.Tensor
    stable_rank: torch.Tensor
    kappa: torch.Tensor
    energy_ranks: dict[float, torch.Tensor]
    top: torch.Tensor

    def as_dict(self) -> dict[str, object]:
        """Plain-number view (``tolist()``) for JSON results."""
        return {
            "frobenius": self.frobenius_sq.sqrt().tolist(),
            "stable_rank": self.stable_rank.tolist(),
            "kappa": self.kappa.tolist(),
            "energy_rank": {f"{eps:g}": r.tolist() for eps, r in self.energy_ranks.items()},
            "sigma_top": self.top.tolist(),
        }


def spectrum(G: torch.Tensor, eps: Sequence[float] = (0.01,), top: int = 5) -> Spectrum:
    """All spectral quantities of ``G`` (``[..., m, n]``) from one batched SVD."""
    check_int("top", top, minimum=0)
    sigma = singular_values(G)
    return Spectrum(
        sigma=sigma,
        frobenius_sq=energy(sigma),
        stable_rank=stable_rank(sigma),
        kappa=rank_one_residual(sigma),
        energy_ranks={float(e): energy_rank(sigma, e) for e in eps},
        top=sigma[..., :top],
    )


def layer_spectra(
    named_tensors: Iterable[tuple[str, torch.Tensor]], eps: Sequence[float] = (0.01,), top: int = 5
) -> dict[str, dict[str, object]]:
    """Per-layer rank summary of gradients (or any tensors), e.g. ``((n, p.grad) for n, p in
    model.named_parameters() if p.grad is not None)``; for the GPU transformer runs.

    Each tensor is moved to float64 on its own device before the SVD (bf16/fp16 training gradients
    have no LAPACK path and their round-off would dominate small singular values); non-matrices are
    skipped (see :func:`as_matrix`). Returns ``{name: {shape, stable_rank, kappa, energy_rank, ...}}``.
    """
    out: dict[str, dict[str, object]] = {}
    for name, tensor in named_tensors:
        if tensor is None:
            continue
        mat = as_matrix(tensor.detach())
        if mat is None or mat.numel() == 0:
            continue
        spec = spectrum(mat.to(torch.float64), eps=eps, top=top)
        row = {"shape": list(tensor.shape), "matrix_shape": list(mat.shape)}
        row.update(spec.as_dict())
        out[name] = row
    return out
