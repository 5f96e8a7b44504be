r"""Decoupled weight decay, written once for every optimizer (Loshchilov & Hutter, arXiv 1711.05101).

Two places in a step, because the papers' and the authors' codes differ on where the decay acts:

* **before** the update, :math:`W \leftarrow (1-\eta\lambda)W` (``torch.optim.AdamW``; Lion's and MARS's
  :math:`x \leftarrow x - \eta(u + \lambda x)` with :math:`x` decayed first);
* **after** the update, :math:`W \leftarrow W - \eta\lambda W` on the updated weight (Hugging Face AdamW,
  the GaLore/Fira codes, the SN-SM code, LDAdam's ``weight_decay_timing="after"``).

The two are the same map in exact arithmetic only when the update is zero; in floating point even the
two spellings of the same map differ in the last bit, so each optimizer keeps the one it documents.
A method with a ``weight_decay_timing`` option calls both functions with it; a method with a fixed place
calls the one function with its default ``timing``. The ``*_foreach`` twins do the same on lists of
tensors (the fast path, ``fast=``).
"""

from __future__ import annotations

import torch

from ._foreach import add_scaled_

__all__ = ["decay_before", "decay_after", "decay_before_foreach", "decay_after_foreach"]


def decay_before(param: torch.Tensor, lr: float, weight_decay: float, timing: str = "before") -> None:
    r""":math:`W \leftarrow (1-\eta\lambda)W`, in place, when ``timing`` is ``"before"`` and λ ≠ 0."""
    if weight_decay != 0 and timing == "before":
        param.mul_(1 - lr * weight_decay)


def decay_after(param: torch.Tensor, lr: float, weight_decay: float, timing: str = "after") -> None:
    r""":math:`W \leftarrow W - \eta\lambda W`, in place, when ``timing`` is ``"after"`` and λ ≠ 0."""
    if weight_decay != 0 and timing == "after":
        param.add_(param, alpha=-lr * weight_decay)


def decay_before_foreach(params: list[torch.Tensor], lr: float | torch.Tensor, weight_decay: float, timing: str = "before") -> None:
    """:func:`decay_before` on a list of tensors (one multi-tensor op)."""
    if weight_decay != 0 and timing == "before":
        torch._foreach_mul_(params, 1 - lr * weight_decay)


def decay_after_foreach(params: list[torch.Tensor], lr: float | torch.Tensor, weight_decay: float, timing: str = "after") -> None:
    """:func:`decay_after` on a list of tensors (one multi-tensor op)."""
    if weight_decay != 0 and timing == "after":
        add_scaled_(params, params, -lr * weight_decay)
