r"""AdaGrad-Coordinate: per-coordinate AdaGrad (Duchi, Hazan & Singer 2011), the ``k = 1`` end of
Subset-Norm (Nguyen & Nguyen, arXiv 2411.07120; docs/methods.md §1.1).

.. math::

   \begin{aligned}
   &\textbf{input: } \eta \text{ (lr)},\ b_0 \ge 0,\ \epsilon \ge 0,\ \lambda \text{ (weight decay)} \\
   &\textbf{init: } b_{0,i}^2 = b_0^2 \quad (i = 1, \dots, d) \\
   &\textbf{for } t = 1, 2, \dots \\
   &\quad b_{t,i}^2 \leftarrow b_{t-1,i}^2 + g_{t,i}^2 \\
   &\quad x_{t,i} \leftarrow x_{t-1,i} - \eta\, \frac{g_{t,i}}{b_{t,i} + \epsilon} \\
   &\quad x_t \leftarrow x_t - \eta\lambda\, x_t \qquad \text{(decoupled, after the update)}
   \end{aligned}

It is ``adagrad_subset_norm`` with subsets of one coordinate; the math is
:func:`algorithms.adagrad_subset_norm.adagrad_subset_norm_update` with the ``"coordinate"`` layout
(the accumulator has the parameter's own shape). ``variant="paper"``: :math:`b_0 > 0` inside the
square root, :math:`\epsilon = 0` (the placement is an **unverified** reconstruction of the SN
theory [U]); ``variant="official"``: :math:`b_0 = 0`, :math:`\epsilon = 10^{-6}` after the square
root (the authors' ``GenericOptim`` with ``betas=(0, 1)``, ``correct_bias=False`` [C]).

Paper numbering: the algorithm and equation numbers of arXiv 2411.07120 are **not verified**.

Exact reduction (tested in float64 to round-off): ``torch.optim.Adagrad(lr,
initial_accumulator_value=b0**2, eps=eps, lr_decay=0, weight_decay=0)``.

Shapes: elementwise, so every shape (0-D … N-D, zero-size) is handled identically; with
``batch_dims`` nothing couples the independent problems.

Defaults
--------
============ ============ ===========================================================
argument     default      source
============ ============ ===========================================================
lr           1e-2         ours (torch.optim.Adagrad's default)
b0           paper: 1e-2  ours (the theory needs b0 > 0; its value is not given) [U]
             official: 0  authors' code
eps          paper: 0     the theory
             official:    authors' code, after the square root
             1e-6
weight_decay 0            authors' code (decoupled, after the update)
============ ============ ===========================================================
"""

from __future__ import annotations

from typing import Any

from ._registry import register
from .adagrad_subset_norm import AdagradFamily

__all__ = ["AdagradCoordinate"]


@register("adagrad_coordinate")
class AdagradCoordinate(AdagradFamily):
    __doc__ = __doc__
    elementwise = True

    def __init__(
        self,
        params,
        lr: float = 1e-2,
        *,
        b0: float | None = None,
        eps: float | None = None,
        weight_decay: float = 0.0,
        variant: str = "paper",
        seed: int = 0,
        nonfinite: str = "raise",
        batch_dims: int = 0,
        fast: bool | str = False,
    ) -> None:
        defaults = dict(lr=lr, b0=b0, eps=eps, weight_decay=weight_decay, variant=variant)
        super().__init__(params, defaults, seed=seed, nonfinite=nonfinite, batch_dims=batch_dims, fast=fast)

    def _subset_rule(self, group: dict[str, Any]) -> str:
        return "coordinate"
