r"""Adam / AdamW (Kingma & Ba 2015; Loshchilov & Hutter 2019), with both ε conventions.

.. math::

   \begin{aligned}
   &\textbf{input: } \eta,\ (\beta_1, \beta_2),\ \epsilon,\ \lambda,\ \text{eps\_placement} \\
   &\textbf{for } t = 1, 2, \dots \\
   &\quad g_t \leftarrow \nabla f_t(x_{t-1}) \ (+\lambda x_{t-1} \text{ if not decoupled}) \\
   &\quad x \leftarrow (1 - \eta\lambda)\, x_{t-1} \quad \text{(decoupled, timing "before": torch AdamW)} \\
   &\quad m_t \leftarrow \beta_1 m_{t-1} + (1-\beta_1) g_t, \qquad
          v_t \leftarrow \beta_2 v_{t-1} + (1-\beta_2) g_t^2 \\
   &\quad c_1 = 1-\beta_1^t,\ c_2 = 1-\beta_2^t \quad (c_1 = c_2 = 1 \text{ without bias correction}) \\
   &\quad \text{torch: } x \leftarrow x - \frac{\eta}{c_1}\, \frac{m_t}{\sqrt{v_t}/\sqrt{c_2} + \epsilon}
   \qquad
   \text{hf: } x \leftarrow x - \frac{\eta \sqrt{c_2}}{c_1}\, \frac{m_t}{\sqrt{v_t} + \epsilon} \\
   &\quad x_t \leftarrow x - \eta\lambda\, x \quad \text{(decoupled, timing "after": HF / GaLore / SN-SM)}
   \end{aligned}

``eps_placement="hf"`` is the convention of ``transformers.AdamW`` that the GaLore, Fira and SN-SM
codes inherit (ε added to the *uncorrected* :math:`\sqrt{v_t}`); with
``weight_decay_timing=None`` the decay timing follows the placement ("torch" → before the update,
as ``torch.optim.AdamW``; "hf" → after it, as ``transformers.AdamW``).

Reductions (tested in float64 to round-off): ``eps_placement="torch"`` equals
``torch.optim.AdamW`` (decoupled) and ``torch.optim.Adam`` (``decoupled_weight_decay=False``).

Defaults
--------
=================== ============ =========================================
argument            default      source
=================== ============ =========================================
lr                  1e-3         Kingma & Ba (2015), Alg. 1
betas               (0.9, 0.999) Kingma & Ba (2015), Alg. 1
eps                 1e-8         Kingma & Ba (2015), Alg. 1
weight_decay        0            torch.optim.AdamW uses 1e-2; 0 here so Adam is the default
decoupled_weight_decay True      Loshchilov & Hutter (2019)
eps_placement       "torch"      torch.optim
bias_correction     True         Kingma & Ba (2015)
=================== ============ =========================================

Shapes: elementwise; every shape is handled identically.

Fast path (``fast=True``, or ``"auto"`` on CUDA): :func:`adam_update_foreach`, the same operations
on lists of tensors (``torch._foreach_*``), one call per device, dtype and step.
"""

from __future__ import annotations

from typing import Any

import torch

from ._base import ReferenceOptimizer
from ._foreach import add_scaled_, advance_steps, buckets, pick
from ._registry import register
from .validation import check_beta, check_bool, check_choice, check_nonnegative
from .weight_decay import decay_after, decay_after_foreach, decay_before, decay_before_foreach

__all__ = ["Adam", "adam_update", "adam_direction", "adam_update_foreach", "adam_direction_foreach",
           "bias_corrections", "from_torch_adam_state_dict"]

EPS_PLACEMENTS = ("torch", "hf")


def bias_corrections(beta1: float, beta2: float, step: int, enabled: bool = True) -> tuple[float, float]:
    """(1 - β1^t, 1 - β2^t), or (1, 1) when disabled."""
    if not enabled:
        return 1.0, 1.0
    return 1.0 - beta1**step, 1.0 - beta2**step


def adam_direction(
    exp_avg: torch.Tensor,
    exp_avg_sq: torch.Tensor,
    step: int,
    *,
    beta1: float,
    beta2: float,
    eps: float,
    eps_placement: str,
    bias_correction: bool = True,
) -> torch.Tensor:
    """The normalized step :math:`u_t` with ``x ← x - lr · u_t`` (bias corrections folded in)."""
    c1, c2 = bias_corrections(beta1, beta2, step, bias_correction)
    if eps_placement == "torch":
        denom = (exp_avg_sq.sqrt() / (c2**0.5)).add_(eps)
        return exp_avg / denom / c1
    denom = exp_avg_sq.sqrt().add_(eps)
    return exp_avg / denom * (c2**0.5 / c1)


def adam_update(
    param: torch.Tensor,
    grad: torch.Tensor,
    exp_avg: torch.Tensor,
    exp_avg_sq: torch.Tensor,
    step: int,
    *,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    decoupled_weight_decay: bool,
    eps_placement: str,
    weight_decay_timing: str,
    bias_correction: bool,
) -> None:
    """One Adam(W) step, in place (any leading batch dims)."""
    if weight_decay != 0 and not decoupled_weight_decay:
        grad = grad.add(param, alpha=weight_decay)
    if decoupled_weight_decay:
        decay_before(param, lr, weight_decay, weight_decay_timing)
    exp_avg.lerp_(grad, 1 - beta1)
    exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    direction = adam_direction(
        exp_avg,
        exp_avg_sq,
        step,
        beta1=beta1,
        beta2=beta2,
        eps=eps,
        eps_placement=eps_placement,
        bias_correction=bias_correction,
    )
    param.add_(direction, alpha=-lr)
    if decoupled_weight_decay:
        decay_after(param, lr, weight_decay, weight_decay_timing)


def adam_direction_foreach(
    exp_avgs: list[torch.Tensor],
    exp_avg_sqs: list[torch.Tensor],
    step: int,
    *,
    beta1: float,
    beta2: float,
    eps: float,
    eps_placement: str,
    bias_correction: bool = True,
) -> list[torch.Tensor]:
    """:func:`adam_direction` on lists of tensors that share ``step`` (the same operations)."""
    c1, c2 = bias_corrections(beta1, beta2, step, bias_correction)
    denom = torch._foreach_sqrt(exp_avg_sqs)
    if eps_placement == "torch":
        torch._foreach_div_(denom, c2**0.5)
        torch._foreach_add_(denom, eps)
        directions = torch._foreach_div(exp_avgs, denom)
        torch._foreach_div_(directions, c1)
        return directions
    torch._foreach_add_(denom, eps)
    directions = torch._foreach_div(exp_avgs, denom)
    torch._foreach_mul_(directions, c2**0.5 / c1)
    return directions


def adam_update_foreach(
    params: list[torch.Tensor],
    grads: list[torch.Tensor],
    exp_avgs: list[torch.Tensor],
    exp_avg_sqs: list[torch.Tensor],
    step: int,
    *,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    decoupled_weight_decay: bool,
    eps_placement: str,
    weight_decay_timing: str,
    bias_correction: bool,
) -> None:
    """:func:`adam_update` on lists of tensors of one device and dtype that share ``step``, in place."""
    if weight_decay != 0 and not decoupled_weight_decay:
        grads = torch._foreach_add(grads, params, alpha=weight_decay)
    if decoupled_weight_decay:
        decay_before_foreach(params, lr, weight_decay, weight_decay_timing)
    torch._foreach_lerp_(exp_avgs, grads, 1 - beta1)
    torch._foreach_mul_(exp_avg_sqs, beta2)
    torch._foreach_addcmul_(exp_avg_sqs, grads, grads, value=1 - beta2)
    directions = adam_direction_foreach(exp_avgs, exp_avg_sqs, step, beta1=beta1, beta2=beta2, eps=eps,
                                        eps_placement=eps_placement, bias_correction=bias_correction)
    add_scaled_(params, directions, -lr)
    if decoupled_weight_decay:
        decay_after_foreach(params, lr, weight_decay, weight_decay_timing)


@register("adam")
class Adam(ReferenceOptimizer):
    __doc__ = __doc__
    paper = "Kingma & Ba, arXiv 1412.6980; Loshchilov & Hutter, arXiv 1711.05101"
    variants = ("paper",)
    elementwise = True
    has_fast_path = True

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        *,
        decoupled_weight_decay: bool = True,
        eps_placement: str = "torch",
        weight_decay_timing: str | None = None,
        bias_correction: bool = True,
        seed: int = 0,
        nonfinite: str = "raise",
        batch_dims: int = 0,
        fast: bool | str = False,
    ) -> None:
        if weight_decay_timing is None:
            weight_decay_timing = "before" if eps_placement == "torch" else "after"
        defaults = dict(
            lr=lr,
            betas=tuple(betas) if isinstance(betas, (tuple, list)) else betas,
            eps=eps,
            weight_decay=weight_decay,
            decoupled_weight_decay=decoupled_weight_decay,
            eps_placement=eps_placement,
            weight_decay_timing=weight_decay_timing,
            bias_correction=bias_correction,
        )
        super().__init__(params, defaults, seed=seed, nonfinite=nonfinite, batch_dims=batch_dims, fast=fast)

    def _validate_group(self, group: dict[str, Any]) -> None:
        validate_adam_hyper(group)

    @classmethod
    def _import_foreign_state_dict(cls, state_dict, optimizer):
        return from_torch_adam_state_dict(state_dict, optimizer)

    def _init_state(self, p, group, state) -> None:
        state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)

    def _update_param(self, p, grad, state, group) -> None:
        state["step"] += 1
        beta1, beta2 = group["betas"]
        adam_update(
            p,
            grad,
            state["exp_avg"],
            state["exp_avg_sq"],
            int(state["step"]),
            lr=float(group["lr"]),
            beta1=beta1,
            beta2=beta2,
            eps=group["eps"],
            weight_decay=group["weight_decay"],
            decoupled_weight_decay=group["decoupled_weight_decay"],
            eps_placement=group["eps_placement"],
            weight_decay_timing=group["weight_decay_timing"],
            bias_correction=group["bias_correction"],
        )

    def _step_group_fast(self, group) -> None:
        params, grads, states = self._active_params(group)
        steps = advance_steps(states)
        beta1, beta2 = group["betas"]
        for idx in buckets(params, steps):
            self._kernel(adam_update_foreach)(
                pick(params, idx),
                pick(grads, idx),
                [states[i]["exp_avg"] for i in idx],
                [states[i]["exp_avg_sq"] for i in idx],
                steps[idx[0]],
                lr=float(group["lr"]),
                beta1=beta1,
                beta2=beta2,
                eps=group["eps"],
                weight_decay=group["weight_decay"],
                decoupled_weight_decay=group["decoupled_weight_decay"],
                eps_placement=group["eps_placement"],
                weight_decay_timing=group["weight_decay_timing"],
                bias_correction=group["bias_correction"],
            )


def validate_adam_hyper(group: dict[str, Any]) -> None:
    """Validate the Adam hyperparameters shared by every Adam-like optimizer in this package."""
    check_nonnegative("lr", group["lr"])
    betas = group["betas"]
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise TypeError(f"betas must be a pair (beta1, beta2), got {betas!r}")
    check_beta("betas[0]", betas[0])
    check_beta("betas[1]", betas[1])
    check_nonnegative("eps", group["eps"])
    check_nonnegative("weight_decay", group["weight_decay"])
    if "decoupled_weight_decay" in group:
        check_bool("decoupled_weight_decay", group["decoupled_weight_decay"])
    if "eps_placement" in group:
        check_choice("eps_placement", group["eps_placement"], EPS_PLACEMENTS)
    if "weight_decay_timing" in group:
        check_choice("weight_decay_timing", group["weight_decay_timing"], ("before", "after"))
    if "bias_correction" in group:
        check_bool("bias_correction", group["bias_correction"])


#: group keys that mark a ``torch.optim.Adam`` / ``AdamW`` state dict
TORCH_ADAM_KEYS = frozenset({"lr", "betas", "eps", "weight_decay", "amsgrad", "maximize"})
#: torch's implementation switches, which do not change the maths
_TORCH_ADAM_SWITCHES = ("amsgrad", "maximize", "foreach", "capturable", "differentiable", "fused")


def from_torch_adam_state_dict(state_dict: dict[str, Any], optimizer: "Adam") -> dict[str, Any] | None:
    """A ``torch.optim.Adam``/``AdamW`` state dict in :class:`Adam`'s layout (same maths: torch ε
    placement, decay before the update), or ``None`` when ``state_dict`` is not one.

    The toolkit's own keys (``eps_placement``, ``weight_decay_timing``, ``bias_correction``, ``seed``,
    ``nonfinite``, ``batch_dims``) take this optimizer's values; torch's float ``step`` becomes the
    int64 counter. AMSGrad and ``maximize`` have no counterpart here and raise ``ValueError``, as do
    moments whose shape or dtype differs from the parameter's.
    """
    groups = state_dict["param_groups"]
    if not groups or not all(isinstance(g, dict) and TORCH_ADAM_KEYS <= set(g) for g in groups):
        return None
    where = f"{type(optimizer).__name__}.load_state_dict (torch.optim.Adam/AdamW state dict)"
    if len(groups) != len(optimizer.param_groups):
        return None  # the generic checks report the group count
    new_groups, id_to_param = [], {}
    for gi, (g, ours) in enumerate(zip(groups, optimizer.param_groups)):
        for flag in ("amsgrad", "maximize"):
            if g[flag]:
                raise ValueError(f"{where}: param_groups[{gi}] has {flag}=True, which adam does not implement")
        if "decoupled_weight_decay" not in g and g["weight_decay"] != 0:
            raise ValueError(
                f"{where}: param_groups[{gi}] has weight_decay={g['weight_decay']} but no 'decoupled_weight_decay' "
                "(saved by a torch older than 2.6?), so Adam's L2 penalty cannot be told from AdamW's decay; "
                "add the key to the group"
            )
        new = {k: v for k, v in g.items() if k not in _TORCH_ADAM_SWITCHES}
        new["betas"] = tuple(float(b) for b in g["betas"])
        new["decoupled_weight_decay"] = bool(g.get("decoupled_weight_decay", False))
        for key in ("seed", "nonfinite", "batch_dims"):
            new[key] = ours[key]
        new["eps_placement"] = "torch"
        new["weight_decay_timing"] = "before"
        new["bias_correction"] = True
        new_groups.append(new)
        if len(g["params"]) == len(ours["params"]):
            id_to_param.update(zip(g["params"], ((gi, pi, p) for pi, p in enumerate(ours["params"]))))
    new_state = {}
    for pid, entry in state_dict["state"].items():
        if pid not in id_to_param:
            continue
        gi, pi, p = id_to_param[pid]
        label = optimizer._param_label(gi, pi)
        for key in ("exp_avg", "exp_avg_sq"):
            t = entry.get(key)
            if not isinstance(t, torch.Tensor) or t.shape != p.shape or t.dtype != p.dtype:
                got = "nothing" if not isinstance(t, torch.Tensor) else f"shape {tuple(t.shape)} {t.dtype}"
                raise ValueError(f"{where}: {label}: state {key!r} is {got}, the parameter has shape "
                                 f"{tuple(p.shape)} {p.dtype}")
        new_state[pid] = {"step": torch.tensor(int(round(float(entry["step"]))), dtype=torch.int64),
                          "exp_avg": entry["exp_avg"], "exp_avg_sq": entry["exp_avg_sq"]}
    return {"state": new_state, "param_groups": new_groups}
