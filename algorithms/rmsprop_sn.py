r"""RMSPropSN: RMSProp with a Subset-Norm second moment and no momentum state (Nguyen & Nguyen,
arXiv 2411.07120; the authors' "rmsprop" preset, docs/methods.md §1.3).

.. math::

   \begin{aligned}
   &\textbf{input: } \eta \text{ (lr)},\ \beta_2,\ \epsilon,\ \lambda,
     \ \text{partition } \Psi_1 \cup \dots \cup \Psi_c \text{ (subset\_size)} \\
   &\textbf{for } t = 1, 2, \dots \\
   &\quad v_{t,j} \leftarrow \beta_2 v_{t-1,j} + (1-\beta_2) \|g_{t,\Psi_j}\|_2^2
        \qquad (v_{t,j} \leftarrow v_{t-1,j} + \|g_{t,\Psi_j}\|_2^2 \text{ when } \beta_2 = 1) \\
   &\quad c_2 = 1 - \beta_2^t \text{ with bias correction, else } 1 \\
   &\quad \text{hf: } x_i \leftarrow x_i - \eta\sqrt{c_2}\, \frac{g_{t,i}}{\sqrt{v_{t,\psi(i)}} + \epsilon}
   \qquad
   \text{torch: } x_i \leftarrow x_i - \eta\, \frac{g_{t,i}}{\sqrt{v_{t,\psi(i)}/c_2} + \epsilon} \\
   &\quad x \leftarrow x - \eta\lambda\, x \qquad \text{(decoupled, after the update)}
   \end{aligned}

It is ``adam_sn`` with β₁ = 0 (the math is :func:`algorithms.adam_sn.adam_sn_update`); the only
state is the per-subset accumulator (``max(m, n)`` numbers for a matrix under ``"heuristics"``).
The authors' preset has no bias correction (``correct_bias=False`` [C]), so with the default
``bias_correction=False`` the two ε placements coincide: :math:`x \leftarrow x - \eta g/(\sqrt{v} + \epsilon)`.
Variants as ``adam_sn``: ``eps_placement`` "hf" (official) or "torch" (paper, **unverified** [U]),
and β₂ = 1 with bias correction (official: zero step, with a warning; paper: :math:`c_2 = 1`).

Paper numbering: the algorithm and equation numbers of arXiv 2411.07120 are **not verified**.

Exact reductions (tested in float64 to round-off): ``adam_sn`` with ``betas=(0, beta2)``;
``subset_size=1`` ≡ ``torch.optim.RMSprop(lr, alpha=beta2, eps=eps)``.

Subsets and shapes: as ``adam_sn`` (:mod:`algorithms.subsets`).

Defaults
--------
================ ============ ===========================================================
argument         default      source
================ ============ ===========================================================
lr               1e-3         authors' code (``GenericOptim``; examples.sh uses 1e-2 on LLaMA-60M)
beta2            0.999        authors' code ("rmsprop" preset)
eps              1e-6         authors' code
weight_decay     0            authors' code
subset_size      -2           authors' code (CLI default)
bias_correction  False        authors' code ("rmsprop" preset)
eps_placement    by variant   official: "hf"; paper: "torch" [U]
subset_fallback  "warn"       ours
================ ============ ===========================================================
"""

from __future__ import annotations

from typing import Any

from ._registry import register
from .validation import check_beta
from .adam_sn import AdamSN

__all__ = ["RMSPropSN"]


@register("rmsprop_sn")
class RMSPropSN(AdamSN):
    __doc__ = __doc__

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        beta2: float = 0.999,
        eps: float = 1e-6,
        weight_decay: float = 0.0,
        *,
        subset_size: int | str = -2,
        bias_correction: bool = False,
        eps_placement: str | None = None,
        subset_fallback: str = "warn",
        variant: str = "paper",
        seed: int = 0,
        nonfinite: str = "raise",
        batch_dims: int = 0,
        fast: bool | str = False,
    ) -> None:
        defaults = dict(
            lr=lr,
            beta2=beta2,
            eps=eps,
            weight_decay=weight_decay,
            subset_size=subset_size,
            bias_correction=bias_correction,
            eps_placement=eps_placement,
            subset_fallback=subset_fallback,
            variant=variant,
        )
        super(AdamSN, self).__init__(params, defaults, seed=seed, nonfinite=nonfinite, batch_dims=batch_dims, fast=fast)

    def _betas(self, group: dict[str, Any]) -> tuple[float, float]:
        return 0.0, check_beta("beta2", group["beta2"], allow_one=True)
